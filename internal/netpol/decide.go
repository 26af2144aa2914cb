package netpol

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Flow is one new connection (or first datagram), after any Service DNAT.
type Flow struct {
	Src, Dst netip.Addr
	Protocol corev1.Protocol
	Port     uint16
}

// Side is the verdict of one direction: the egress of the source pod or the
// ingress of the destination pod.
type Side struct {
	Pod      string   `json:"pod,omitempty"`      // namespace/name ("" : not a pod, no policy applies)
	Isolated bool     `json:"isolated"`           // some policy selects the pod for this direction
	Policies []string `json:"policies,omitempty"` // the selecting policies
	Allowed  bool     `json:"allowed"`
	By       []string `json:"by,omitempty"` // the policies whose rules allow the flow
}

// Verdict is the decision for a flow: both sides must allow it.
type Verdict struct {
	Egress, Ingress Side
}

// Allowed says whether the flow passes both the source's egress and the
// destination's ingress policies.
func (v Verdict) Allowed() bool { return v.Egress.Allowed && v.Ingress.Allowed }

// String says what decided the flow, for a person.
func (v Verdict) String() string {
	side := func(dir string, s Side) string {
		switch {
		case s.Pod == "":
			return dir + ": not a pod, no policy applies"
		case !s.Isolated:
			return fmt.Sprintf("%s of %s: not isolated (no policy selects it for %s), allowed", dir, s.Pod, dir)
		case s.Allowed:
			return fmt.Sprintf("%s of %s: allowed by %s", dir, s.Pod, strings.Join(s.By, ", "))
		}
		return fmt.Sprintf("%s of %s: dropped: isolated by %s and no rule allows it", dir, s.Pod, strings.Join(s.Policies, ", "))
	}
	return side("egress", v.Egress) + "; " + side("ingress", v.Ingress)
}

// Decide applies Kubernetes' semantics to one flow: a pod is isolated in a
// direction when a policy selecting it has that policyType; an isolated pod
// accepts what the union of its selecting policies' rules allows.
func Decide(s *State, f Flow) Verdict {
	src, dst := s.podByIP(f.Src), s.podByIP(f.Dst)
	v := Verdict{Egress: Side{Allowed: true}, Ingress: Side{Allowed: true}}
	if f.Src == f.Dst { // a pod reaching itself (through its Service): policies cannot block it
		return v
	}
	if src != nil {
		v.Egress = s.decideSide(src, f.Dst, dst, f, false)
	}
	if dst != nil {
		v.Ingress = s.decideSide(dst, f.Src, src, f, true)
	}
	return v
}

// decideSide decides one direction for the policy subject pod; remote is the other end.
func (s *State) decideSide(pod *Pod, remoteIP netip.Addr, remote *Pod, f Flow, ingress bool) Side {
	side := Side{Pod: pod.Key(), Allowed: true}
	pols := s.selecting(pod, ingress)
	if len(pols) == 0 {
		return side
	}
	side.Isolated, side.Allowed = true, false
	target := remote // named ports are resolved on the pod receiving the traffic
	if ingress {
		target = pod
	}
	for _, p := range pols {
		side.Policies = append(side.Policies, p.Key())
		rules := p.EgressRules
		if ingress {
			rules = p.IngressRules
		}
		for _, r := range rules {
			if s.ruleAllows(p, r, remoteIP, remote, target, f) {
				side.Allowed = true
				side.By = append(side.By, p.Key())
				break
			}
		}
	}
	return side
}

func (s *State) ruleAllows(p *Policy, r Rule, ip netip.Addr, remote, target *Pod, f Flow) bool {
	peerOK := len(r.Peers) == 0
	for _, pe := range r.Peers {
		if pe.Block != nil && pe.Block.contains(ip) || s.peerPod(pe, p.Namespace, remote) {
			peerOK = true
			break
		}
	}
	if !peerOK {
		return false
	}
	if len(r.Ports) == 0 {
		return true
	}
	for _, ps := range r.Ports {
		if from, to, ok := ps.resolve(target); ok && ps.Protocol == f.Protocol && f.Port >= from && f.Port <= to {
			return true
		}
	}
	return false
}

// resolve is the port range ps means on target (the receiving pod, nil when
// not a pod); ok is false for a named port target does not have.
func (ps PortSpec) resolve(target *Pod) (from, to uint16, ok bool) {
	switch {
	case ps.Name != "":
		if target == nil {
			return 0, 0, false
		}
		n := target.port(ps.Name, ps.Protocol)
		return n, n, n != 0
	case ps.Port == 0:
		return 0, 65535, true
	case ps.EndPort > ps.Port:
		return ps.Port, ps.EndPort, true
	}
	return ps.Port, ps.Port, true
}

func (b *Block) contains(ip netip.Addr) bool {
	if !b.CIDR.Contains(ip) {
		return false
	}
	for _, e := range b.Except {
		if e.Contains(ip) {
			return false
		}
	}
	return true
}
