package netns

import (
	"testing"
)

// FuzzStateFiles feeds any bytes to every state-file decoder: no panic,
// and a decoder that fails returns nothing.
func FuzzStateFiles(f *testing.F) {
	f.Add([]byte(`{"annotations":{"io.kubernetes.cri.sandbox-uid":"u","io.kubernetes.cri.container-name":"c","io.kubernetes.cri.container-type":"sandbox"}}`))
	f.Add([]byte(`{"annotations":{"io.kubernetes.pod.name":"p","io.kubernetes.cri-o.Image":"i"}}`))
	f.Add([]byte(`{"Name":"/web","Config":{"Image":"nginx","Labels":{"io.kubernetes.container.name":"c"}}}`))
	f.Add([]byte(`[{"id":"a","names":["web"],"metadata":"{\"pod-name\":\"p\",\"metadata-name\":\"c\"}"},{"id":"b","metadata":"{"}]`))
	f.Add([]byte("HOSTNAME=web\x00KUBERNETES_SERVICE_HOST=10.96.0.1\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for name, decode := range map[string]func([]byte) (stateInfo, error){
			"oci": decodeOCIConfig, "docker": decodeDockerConfig,
		} {
			if s, err := decode(b); err != nil && s != (stateInfo{}) {
				t.Fatalf("%s: error %v with %+v", name, err, s)
			}
		}
		if m, err := decodeStorageContainers(b); err != nil && m != nil {
			t.Fatalf("storage: error %v with %d containers", err, len(m))
		}
		parseEnviron(b)
	})
}

// TestParseEnviron: the pod's name is $HOSTNAME, Kubernetes is known from
// $KUBERNETES_SERVICE_HOST, and a variable whose value holds "=" or whose
// name only starts the same is not mistaken for one.
func TestParseEnviron(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want environ
	}{
		{"HOSTNAME=web-0\x00KUBERNETES_SERVICE_HOST=10.96.0.1\x00", environ{Hostname: "web-0", Kubernetes: true}},
		{"HOSTNAME=a=b\x00KUBERNETES_SERVICE_HOST=\x00", environ{Hostname: "a=b"}},
		{"HOSTNAMEX=web\x00XKUBERNETES_SERVICE_HOST=1\x00HOSTNAME", environ{}},
		{"", environ{}},
	} {
		if got := parseEnviron([]byte(tc.in)); got != tc.want {
			t.Errorf("parseEnviron(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}
