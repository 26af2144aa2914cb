package agent

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
)

var noRunNow = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func testPod(name string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: k8stypes.UID("uid-" + name)},
		Spec: corev1.PodSpec{NodeName: "n1"},
		Status: corev1.PodStatus{Phase: phase, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}}}
}

func TestNoRunCondition(t *testing.T) {
	const msg = "pods bound to node n1 do not run: missing root privileges"
	marked := testPod("marked", corev1.PodPending)
	marked.Status.Conditions = append(marked.Status.Conditions, corev1.PodCondition{Type: corev1.PodReadyToStartContainers,
		Status: corev1.ConditionFalse, Reason: noRunReason, Message: msg})
	otherMsg := marked.DeepCopy()
	otherMsg.Status.Conditions[1].Message = "pods bound to node n1 do not run: missing CNI plugins bridge"
	deleting := testPod("deleting", corev1.PodPending)
	deleting.DeletionTimestamp = &metav1.Time{Time: noRunNow}
	for _, tc := range []struct {
		pod  *corev1.Pod
		want bool
	}{
		{testPod("new", ""), true},
		{testPod("pending", corev1.PodPending), true},
		{testPod("running", corev1.PodRunning), false}, // ran before: not this agent's to say
		{testPod("done", corev1.PodSucceeded), false},
		{deleting, false},
		{marked, false},
		{otherMsg, true}, // the reason changed (e.g. restarted as root without CNI)
	} {
		c, write := noRunCondition(tc.pod, msg, noRunNow)
		if write != tc.want {
			t.Errorf("%s: write = %v, want %v", tc.pod.Name, write, tc.want)
		}
		if c.Type != corev1.PodReadyToStartContainers || c.Status != corev1.ConditionFalse || c.Reason != noRunReason ||
			c.Message != msg || !c.LastTransitionTime.Time.Equal(noRunNow) {
			t.Errorf("%s: condition = %+v", tc.pod.Name, c)
		}
	}
}

// TestReportNoRun runs the agent without a pod runtime on a fake API: each
// pending pod gets the condition (PodScheduled kept) and one Warning event,
// in one status write, however often it is updated afterwards.
func TestReportNoRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(testPod("a", corev1.PodPending), testPod("ran", corev1.PodRunning))
	a, err := New(client, Options{NodeName: "n1", NodeIP: "10.0.0.1", Now: func() time.Time { return noRunNow }})
	if err != nil {
		t.Fatal(err)
	}
	a.noRun = "pods bound to node n1 do not run: missing root privileges: the svcnet agent runs as uid 1000; fix: start svcnet as root (sudo)"
	a.finishDeletions(ctx)
	if _, err := client.CoreV1().Pods("default").Create(ctx, testPod("b", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	events := func() []corev1.Event {
		l, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return l.Items
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return len(events()) == 2, nil
	}); err != nil {
		t.Fatalf("events: %+v", events())
	}
	// Updates of a marked pod (its own condition, labels) write nothing more.
	for range 3 {
		p, err := client.CoreV1().Pods("default").Get(ctx, "a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Labels = map[string]string{"n": p.ResourceVersion}
		if _, err := client.CoreV1().Pods("default").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	patches := map[string]int{}
	for _, act := range client.Actions() {
		if act.GetVerb() == "patch" && act.GetResource().Resource == "pods" {
			patches[act.GetSubresource()+" "+act.(interface{ GetName() string }).GetName()]++
		}
	}
	if len(patches) != 2 || patches["status a"] != 1 || patches["status b"] != 1 {
		t.Errorf("status writes = %v, want one for each of a and b", patches)
	}
	for _, ev := range events() {
		if ev.Type != corev1.EventTypeWarning || ev.Reason != noRunReason || ev.Message != a.noRun ||
			ev.InvolvedObject.Kind != "Pod" || ev.Source.Host != "n1" {
			t.Errorf("event = %+v", ev)
		}
	}
	for _, name := range []string{"a", "b"} {
		p, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range p.Status.Conditions {
			got = append(got, string(c.Type)+"="+string(c.Status)+" "+c.Reason)
		}
		slices.Sort(got)
		if strings.Join(got, ", ") != "PodReadyToStartContainers=False PodRuntimeUnavailable, PodScheduled=True " {
			t.Errorf("%s conditions: %s", name, strings.Join(got, ", "))
		}
	}
}
