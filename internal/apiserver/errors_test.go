package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8sstorage "k8s.io/apiserver/pkg/storage"

	"github.com/svcnet/svcnet/internal/storage"
)

func TestStorageError(t *testing.T) {
	gr := schema.GroupResource{Resource: "services"}
	for _, tc := range []struct {
		err   error
		code  int32
		check func(error) bool
	}{
		{storage.ErrNotFound, http.StatusNotFound, apierrors.IsNotFound},
		{storage.ErrConflict, http.StatusConflict, apierrors.IsConflict},
		{storage.ErrCompacted, http.StatusGone, apierrors.IsResourceExpired},
		{fmt.Errorf("list: %w", storage.ErrFutureRev), http.StatusGatewayTimeout, k8sstorage.IsTooLargeResourceVersion},
		{errors.New("disk on fire"), http.StatusInternalServerError, apierrors.IsInternalError},
	} {
		got := storageError(tc.err, gr, "x")
		var st apierrors.APIStatus
		if !errors.As(got, &st) || st.Status().Code != tc.code || !tc.check(got) {
			t.Errorf("storageError(%v) = %v, want code %d", tc.err, got, tc.code)
		}
	}
}
