package rbac

import (
	"fmt"
	"slices"
	"sort"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Aggregate returns the rules of an aggregated ClusterRole: the rules of every
// other ClusterRole matched by one of its selectors, in name order, without
// duplicates. A role without an aggregationRule keeps its own rules.
func Aggregate(role *rbacv1.ClusterRole, all []*rbacv1.ClusterRole) ([]rbacv1.PolicyRule, error) {
	if role.AggregationRule == nil {
		return role.Rules, nil
	}
	sorted := slices.Clone(all)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var out []rbacv1.PolicyRule
	for _, sel := range role.AggregationRule.ClusterRoleSelectors {
		s, err := metav1.LabelSelectorAsSelector(&sel)
		if err != nil {
			return nil, fmt.Errorf("aggregationRule: %w", err)
		}
		for _, other := range sorted {
			if other.Name == role.Name || !s.Matches(labels.Set(other.Labels)) {
				continue
			}
			for _, r := range other.Rules {
				if !slices.ContainsFunc(out, func(have rbacv1.PolicyRule) bool { return equality.Semantic.DeepEqual(have, r) }) {
					out = append(out, r)
				}
			}
		}
	}
	return out, nil
}

// AggregateAll returns the rules every aggregated ClusterRole of roles should
// have, by name, following chains (admin takes edit, which takes view) until
// nothing changes. roles is not modified.
func AggregateAll(roles []*rbacv1.ClusterRole) (map[string][]rbacv1.PolicyRule, error) {
	work := make([]*rbacv1.ClusterRole, len(roles))
	for i, r := range roles {
		work[i] = r.DeepCopy()
	}
	out := map[string][]rbacv1.PolicyRule{}
	for pass := 0; pass <= len(work); pass++ {
		changed := false
		for _, r := range work {
			if r.AggregationRule == nil {
				continue
			}
			rules, err := Aggregate(r, work)
			if err != nil {
				return nil, fmt.Errorf("clusterrole %q: %w", r.Name, err)
			}
			if !equality.Semantic.DeepEqual(rules, r.Rules) {
				r.Rules, changed = rules, true
			}
			out[r.Name] = r.Rules
		}
		if !changed {
			break
		}
	}
	return out, nil
}
