package runtime

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestArgv(t *testing.T) {
	vars := map[string]string{"NAME": "web", "PORT": "8080"}
	if _, err := argv(corev1.Container{Name: "c", Image: "nginx"}, vars); err == nil || !strings.Contains(err.Error(), `cannot pull image "nginx"`) {
		t.Errorf("argv without command: %v", err)
	}
	got, _ := argv(corev1.Container{Args: []string{"sh", "-c", "echo $(NAME)"}}, vars)
	if strings.Join(got, " ") != "sh -c echo web" {
		t.Errorf("args alone run as the command: %q", got)
	}
}
