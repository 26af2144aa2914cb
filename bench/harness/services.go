package harness

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// CreateService creates Service name (port 80) in default with a slice of addrs.
func CreateService(ctx context.Context, cs kubernetes.Interface, name string, addrs ...string) error {
	if _, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	return CreateSlice(ctx, cs, name, addrs...)
}

// CreateSlice gives Service name in default ready endpoints addrs on port 8080
// (addresses that need not exist).
func CreateSlice(ctx context.Context, cs kubernetes.Interface, name string, addrs ...string) error {
	port, ready := int32(8080), true
	var eps []discoveryv1.Endpoint
	for _, a := range addrs {
		eps = append(eps, discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	_, err := cs.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name + "-x",
		Labels: map[string]string{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "bench"}},
		AddressType: discoveryv1.AddressTypeIPv4, Endpoints: eps, Ports: []discoveryv1.EndpointPort{{Port: &port}}}, metav1.CreateOptions{})
	return err
}
