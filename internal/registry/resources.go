package registry

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func podFields(obj runtime.Object) fields.Set {
	p := obj.(*corev1.Pod)
	return fields.Set{
		"spec.nodeName":            p.Spec.NodeName,
		"spec.restartPolicy":       string(p.Spec.RestartPolicy),
		"spec.schedulerName":       p.Spec.SchedulerName,
		"spec.serviceAccountName":  p.Spec.ServiceAccountName,
		"spec.hostNetwork":         strconv.FormatBool(p.Spec.HostNetwork),
		"status.phase":             string(p.Status.Phase),
		"status.podIP":             p.Status.PodIP,
		"status.nominatedNodeName": p.Status.NominatedNodeName,
	}
}

func eventFields(obj runtime.Object) fields.Set {
	e := obj.(*corev1.Event)
	return fields.Set{
		"involvedObject.kind":            e.InvolvedObject.Kind,
		"involvedObject.namespace":       e.InvolvedObject.Namespace,
		"involvedObject.name":            e.InvolvedObject.Name,
		"involvedObject.uid":             string(e.InvolvedObject.UID),
		"involvedObject.apiVersion":      e.InvolvedObject.APIVersion,
		"involvedObject.resourceVersion": e.InvolvedObject.ResourceVersion,
		"involvedObject.fieldPath":       e.InvolvedObject.FieldPath,
		"reason":                         e.Reason,
		"reportingComponent":             e.ReportingController,
		"source":                         e.Source.Component,
		"type":                           e.Type,
	}
}

func serviceFields(obj runtime.Object) fields.Set {
	s := obj.(*corev1.Service)
	return fields.Set{"spec.clusterIP": s.Spec.ClusterIP, "spec.type": string(s.Spec.Type)}
}

// Default returns every resource svcnet serves, in discovery order.
func Default() *Registry {
	core := func(r *Resource) *Resource { r.Version = "v1"; return r }
	namespaced := func(name apivalidation.ValidateNameFunc, def func(runtime.Object), check func(runtime.Object) field.ErrorList) Generic {
		return Generic{Namespaced: true, Name: name, Default: def, Check: check}
	}
	sub := apivalidation.NameIsDNSSubdomain
	return New(append([]*Resource{
		core(&Resource{Resource: "namespaces", Singular: "namespace", Kind: "Namespace", ShortNames: []string{"ns"},
			HasStatus: true,
			New:       func() runtime.Object { return &corev1.Namespace{} }, NewList: func() runtime.Object { return &corev1.NamespaceList{} },
			Fields: func(o runtime.Object) fields.Set {
				return fields.Set{"status.phase": string(o.(*corev1.Namespace).Status.Phase)}
			},
			Strategy: Generic{Name: apivalidation.ValidateNamespaceName, Default: defaultNamespace}}),
		core(&Resource{Resource: "pods", Singular: "pod", Kind: "Pod", Namespaced: true, ShortNames: []string{"po"}, Categories: []string{"all"},
			HasStatus: true, HasSpec: true,
			New: func() runtime.Object { return &corev1.Pod{} }, NewList: func() runtime.Object { return &corev1.PodList{} },
			Fields:   podFields,
			Strategy: Generic{Namespaced: true, Name: sub, Default: defaultPod, Check: validatePod, CheckUpdate: validatePodUpdate}}),
		core(&Resource{Resource: "services", Singular: "service", Kind: "Service", Namespaced: true, ShortNames: []string{"svc"}, Categories: []string{"all"},
			HasStatus: true,
			New:       func() runtime.Object { return &corev1.Service{} }, NewList: func() runtime.Object { return &corev1.ServiceList{} },
			Fields: serviceFields, Strategy: ServiceStrategy{}}),
		core(&Resource{Resource: "endpoints", Singular: "endpoints", Kind: "Endpoints", Namespaced: true, ShortNames: []string{"ep"},
			CreateOnUpdate: true,
			New:            func() runtime.Object { return &corev1.Endpoints{} }, NewList: func() runtime.Object { return &corev1.EndpointsList{} },
			Strategy: namespaced(sub, defaultEndpoints, nil)}),
		core(&Resource{Resource: "secrets", Singular: "secret", Kind: "Secret", Namespaced: true,
			New: func() runtime.Object { return &corev1.Secret{} }, NewList: func() runtime.Object { return &corev1.SecretList{} },
			Fields:   func(o runtime.Object) fields.Set { return fields.Set{"type": string(o.(*corev1.Secret).Type)} },
			Strategy: Generic{Namespaced: true, Name: sub, Default: defaultSecret, Check: validateSecret, CheckUpdate: validateSecretUpdate}}),
		core(&Resource{Resource: "configmaps", Singular: "configmap", Kind: "ConfigMap", Namespaced: true, ShortNames: []string{"cm"},
			New: func() runtime.Object { return &corev1.ConfigMap{} }, NewList: func() runtime.Object { return &corev1.ConfigMapList{} },
			Strategy: namespaced(sub, nil, validateConfigMap)}),
		core(&Resource{Resource: "serviceaccounts", Singular: "serviceaccount", Kind: "ServiceAccount", Namespaced: true, ShortNames: []string{"sa"},
			New: func() runtime.Object { return &corev1.ServiceAccount{} }, NewList: func() runtime.Object { return &corev1.ServiceAccountList{} },
			Strategy: namespaced(sub, defaultServiceAccount, nil)}),
		core(&Resource{Resource: "replicationcontrollers", Singular: "replicationcontroller", Kind: "ReplicationController", Namespaced: true,
			ShortNames: []string{"rc"}, Categories: []string{"all"}, HasStatus: true, HasSpec: true,
			New:      func() runtime.Object { return &corev1.ReplicationController{} },
			NewList:  func() runtime.Object { return &corev1.ReplicationControllerList{} },
			Fields:   replicationControllerFields,
			Strategy: namespaced(sub, defaultReplicationController, validateReplicationController)}),
		core(&Resource{Resource: "nodes", Singular: "node", Kind: "Node", ShortNames: []string{"no"},
			HasStatus: true,
			New:       func() runtime.Object { return &corev1.Node{} }, NewList: func() runtime.Object { return &corev1.NodeList{} },
			Fields: func(o runtime.Object) fields.Set {
				return fields.Set{"spec.unschedulable": strconv.FormatBool(o.(*corev1.Node).Spec.Unschedulable)}
			},
			Strategy: Generic{Name: sub}}),
		core(&Resource{Resource: "events", Singular: "event", Kind: "Event", Namespaced: true, ShortNames: []string{"ev"},
			CreateOnUpdate: true,
			New:            func() runtime.Object { return &corev1.Event{} }, NewList: func() runtime.Object { return &corev1.EventList{} },
			Fields: eventFields, Strategy: namespaced(sub, nil, nil), Legacy: eventsV1}),
		&Resource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices", Singular: "endpointslice", Kind: "EndpointSlice", Namespaced: true,
			New: func() runtime.Object { return &discoveryv1.EndpointSlice{} }, NewList: func() runtime.Object { return &discoveryv1.EndpointSliceList{} },
			Strategy: namespaced(sub, defaultEndpointSlice, validateEndpointSlice)},
		&Resource{Group: "apps", Version: "v1", Resource: "deployments", Singular: "deployment", Kind: "Deployment", Namespaced: true,
			ShortNames: []string{"deploy"}, Categories: []string{"all"}, HasStatus: true, HasSpec: true,
			New: func() runtime.Object { return &appsv1.Deployment{} }, NewList: func() runtime.Object { return &appsv1.DeploymentList{} },
			Strategy: Generic{Namespaced: true, Name: sub, Default: defaultDeployment, Check: validateDeployment,
				CheckUpdate: func(o, old runtime.Object) field.ErrorList {
					return immutableSelector(o.(*appsv1.Deployment).Spec.Selector, old.(*appsv1.Deployment).Spec.Selector)
				}},
			Legacy: deploymentLegacy},
		&Resource{Group: "apps", Version: "v1", Resource: "replicasets", Singular: "replicaset", Kind: "ReplicaSet", Namespaced: true,
			ShortNames: []string{"rs"}, Categories: []string{"all"}, HasStatus: true, HasSpec: true,
			New: func() runtime.Object { return &appsv1.ReplicaSet{} }, NewList: func() runtime.Object { return &appsv1.ReplicaSetList{} },
			Fields: func(o runtime.Object) fields.Set {
				return fields.Set{"status.replicas": strconv.Itoa(int(o.(*appsv1.ReplicaSet).Status.Replicas))}
			},
			Strategy: Generic{Namespaced: true, Name: sub, Default: defaultReplicaSet, Check: validateReplicaSet,
				CheckUpdate: func(o, old runtime.Object) field.ErrorList {
					return immutableSelector(o.(*appsv1.ReplicaSet).Spec.Selector, old.(*appsv1.ReplicaSet).Spec.Selector)
				}}},
		&Resource{Group: "apps", Version: "v1", Resource: "statefulsets", Singular: "statefulset", Kind: "StatefulSet", Namespaced: true,
			ShortNames: []string{"sts"}, Categories: []string{"all"}, HasStatus: true, HasSpec: true,
			New: func() runtime.Object { return &appsv1.StatefulSet{} }, NewList: func() runtime.Object { return &appsv1.StatefulSetList{} },
			Strategy: Generic{Namespaced: true, Name: sub, Default: defaultStatefulSet, Check: validateStatefulSet, CheckUpdate: validateStatefulSetUpdate}},
		&Resource{Group: "apps", Version: "v1", Resource: "daemonsets", Singular: "daemonset", Kind: "DaemonSet", Namespaced: true,
			ShortNames: []string{"ds"}, Categories: []string{"all"}, HasStatus: true, HasSpec: true,
			New: func() runtime.Object { return &appsv1.DaemonSet{} }, NewList: func() runtime.Object { return &appsv1.DaemonSetList{} },
			Strategy: Generic{Namespaced: true, Name: sub, Default: defaultDaemonSet, Check: validateDaemonSet,
				CheckUpdate: func(o, old runtime.Object) field.ErrorList {
					return immutableSelector(o.(*appsv1.DaemonSet).Spec.Selector, old.(*appsv1.DaemonSet).Spec.Selector)
				}}},
		&Resource{Group: "batch", Version: "v1", Resource: "jobs", Singular: "job", Kind: "Job", Namespaced: true,
			Categories: []string{"all"}, HasStatus: true, HasSpec: true,
			New: func() runtime.Object { return &batchv1.Job{} }, NewList: func() runtime.Object { return &batchv1.JobList{} },
			Fields: func(o runtime.Object) fields.Set {
				return fields.Set{"status.successful": strconv.Itoa(int(o.(*batchv1.Job).Status.Succeeded))}
			},
			Strategy: jobStrategy{Generic{Namespaced: true, Name: sub, Default: defaultJob, Check: validateJob, CheckUpdate: validateJobUpdate}}},
		&Resource{Group: "batch", Version: "v1", Resource: "cronjobs", Singular: "cronjob", Kind: "CronJob", Namespaced: true,
			ShortNames: []string{"cj"}, Categories: []string{"all"}, HasStatus: true, HasSpec: true,
			New: func() runtime.Object { return &batchv1.CronJob{} }, NewList: func() runtime.Object { return &batchv1.CronJobList{} },
			Strategy: namespaced(sub, defaultCronJob, validateCronJob)},
		&Resource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses", Singular: "ingress", Kind: "Ingress", Namespaced: true,
			ShortNames: []string{"ing"}, HasStatus: true, HasSpec: true,
			New: func() runtime.Object { return &networkingv1.Ingress{} }, NewList: func() runtime.Object { return &networkingv1.IngressList{} },
			Strategy: namespaced(sub, nil, validateIngress)},
		&Resource{Group: "networking.k8s.io", Version: "v1", Resource: "ingressclasses", Singular: "ingressclass", Kind: "IngressClass",
			New: func() runtime.Object { return &networkingv1.IngressClass{} }, NewList: func() runtime.Object { return &networkingv1.IngressClassList{} },
			Strategy: Generic{Name: sub, Check: validateIngressClass}},
		&Resource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases", Singular: "lease", Kind: "Lease", Namespaced: true,
			CreateOnUpdate: true,
			New:            func() runtime.Object { return &coordinationv1.Lease{} }, NewList: func() runtime.Object { return &coordinationv1.LeaseList{} },
			Strategy: namespaced(sub, nil, validateLease)},
	}, append(append(append(append(append(networkingResources(), rbacResources()...), policyResources()...), certificateResources()...), controllerRevisionResources()...), volumeResources()...)...)...)
}
