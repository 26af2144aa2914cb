package netpol

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	netlisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Namespace isolation (svcnet up --isolate-namespaces) is one ordinary
// NetworkPolicy per namespace, visible with kubectl get netpol: every pod
// accepts traffic from pods of its own namespace only (and, as always, from
// its node). Namespaces annotated IsolationAnnotation=false, and the system
// namespaces, get none; a deleted one comes back.
const (
	IsolationPolicyName = "svcnet-isolate-namespace"
	IsolationAnnotation = "svcnet.io/isolate-namespace"
	managedBy           = "app.kubernetes.io/managed-by"
)

var systemNamespaces = map[string]bool{"kube-system": true, "kube-public": true, "kube-node-lease": true}

// IsolationPolicy is the policy written into namespace ns.
func IsolationPolicy(ns string) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: IsolationPolicyName, Labels: map[string]string{managedBy: "svcnet"},
			Annotations: map[string]string{"svcnet.io/description": "svcnet --isolate-namespaces: pods accept traffic only from pods of this namespace; annotate the namespace " + IsolationAnnotation + "=false to remove"}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}},
		},
	}
}

// wantsIsolation says whether namespace ns gets the policy.
func wantsIsolation(ns *corev1.Namespace) bool {
	return !systemNamespaces[ns.Name] && ns.Annotations[IsolationAnnotation] != "false" && ns.DeletionTimestamp == nil
}

// IsolateNamespaces keeps the isolation policy in every namespace until ctx ends.
func IsolateNamespaces(ctx context.Context, client kubernetes.Interface, log *slog.Logger) error {
	f := informers.NewSharedInformerFactory(client, 0)
	nss, pols := f.Core().V1().Namespaces(), f.Networking().V1().NetworkPolicies()
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer q.ShutDown()
	enqueue := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		switch o := obj.(type) {
		case *corev1.Namespace:
			q.Add(o.Name)
		case *networkingv1.NetworkPolicy:
			if o.Name == IsolationPolicyName {
				q.Add(o.Namespace)
			}
		}
	}
	h := cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }, DeleteFunc: enqueue}
	for _, inf := range []cache.SharedIndexInformer{nss.Informer(), pols.Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return err
		}
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), nss.Informer().HasSynced, pols.Informer().HasSynced) {
		return ctx.Err()
	}
	go func() { <-ctx.Done(); q.ShutDown() }()
	for {
		name, quit := q.Get()
		if quit {
			return nil
		}
		err := isolate(ctx, client, nss.Lister(), pols.Lister(), name)
		if err != nil && ctx.Err() == nil {
			log.Warn("namespace isolation policy", "namespace", name, "err", err)
			q.AddRateLimited(name)
		} else {
			q.Forget(name)
		}
		q.Done(name)
	}
}

// isolate makes namespace name have the policy or not, as it wants; a policy
// of that name the user wrote (not managed by svcnet) is left alone.
func isolate(ctx context.Context, client kubernetes.Interface, nss corelisters.NamespaceLister, pols netlisters.NetworkPolicyLister, name string) error {
	ns, err := nss.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	have, err := pols.NetworkPolicies(name).Get(IsolationPolicyName)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	api := client.NetworkingV1().NetworkPolicies(name)
	switch want := wantsIsolation(ns); {
	case want && have == nil:
		_, err = api.Create(ctx, IsolationPolicy(name), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) || apierrors.IsForbidden(err) && ns.Status.Phase == corev1.NamespaceTerminating {
			return nil
		}
		return err
	case !want && have != nil && have.Labels[managedBy] == "svcnet":
		err = api.Delete(ctx, IsolationPolicyName, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	return nil
}
