package apiserver

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestPatchPinsResourceVersion(t *testing.T) {
	for _, tc := range []struct {
		pt    types.PatchType
		patch string
		want  bool
	}{
		{types.MergePatchType, `{"metadata":{"labels":{"a":"b"}}}`, false},
		{types.MergePatchType, `{"metadata":{"resourceVersion":"7"},"spec":{}}`, true},
		{types.StrategicMergePatchType, `{"status":{"loadBalancer":{}}}`, false},
		{types.StrategicMergePatchType, `{"metadata":{"resourceVersion":"7"}}`, true},
		{types.JSONPatchType, `[{"op":"replace","path":"/spec/replicas","value":2}]`, false},
		{types.JSONPatchType, `[{"op":"test","path":"/metadata/resourceVersion","value":"7"}]`, true},
		{types.MergePatchType, `not json`, true}, // decoding fails later anyway; never retry blindly
	} {
		if got := patchPinsResourceVersion(tc.pt, []byte(tc.patch)); got != tc.want {
			t.Errorf("%s %s: pinned = %v, want %v", tc.pt, tc.patch, got, tc.want)
		}
	}
}
