// Command informer checks the API server with an older client-go (this module pins
// v0.32, the version kubectl 1.32 is built with): a shared informer on Services
// must sync by list+watch and see an add, an update and a delete.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the API server")
	flag.Parse()
	if err := run(*kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, "informer: FAIL:", err)
		os.Exit(1)
	}
	fmt.Println("informer: ok")
}

func run(kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	state := map[string]string{}
	set := func(name, s string) { mu.Lock(); state[name] = s; mu.Unlock() }
	factory := informers.NewSharedInformerFactory(cs, 0)
	inf := factory.Core().V1().Services().Informer()
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { set(o.(*corev1.Service).Name, "added") },
		UpdateFunc: func(_, o any) { set(o.(*corev1.Service).Name, "updated:"+o.(*corev1.Service).Labels["v"]) },
		DeleteFunc: func(o any) {
			if s, ok := o.(*corev1.Service); ok {
				set(s.Name, "deleted")
			}
		},
	})
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("informer did not sync")
	}
	wait := func(name, want string) error {
		for ctx.Err() == nil {
			mu.Lock()
			got := state[name]
			mu.Unlock()
			if got == want {
				return nil
			}
			time.Sleep(20 * time.Millisecond)
		}
		return fmt.Errorf("%s never became %q", name, want)
	}
	if err := wait("kubernetes", "added"); err != nil {
		return err
	}
	svcs := cs.CoreV1().Services("default")
	svc, err := svcs.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "old-client"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if err := wait("old-client", "added"); err != nil {
		return err
	}
	svc.Labels = map[string]string{"v": "2"}
	if _, err := svcs.Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if err := wait("old-client", "updated:2"); err != nil {
		return err
	}
	if err := svcs.Delete(ctx, "old-client", metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	return wait("old-client", "deleted")
}
