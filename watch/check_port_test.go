package watch

import (
	"testing"
	"time"
)

func TestCheckPort(t *testing.T) {
	for spec, want := range map[string]int{
		"tcp://127.0.0.1:143":       143,
		"tcp://[::1]:993":           993,
		"http://127.0.0.1/health":   80,
		"https://127.0.0.1/health":  443,
		"http://127.0.0.1:8080/x":   8080,
		"https://[::1]:8443/health": 8443,
		"exec:true":                 0,
	} {
		c, err := ParseCheck(spec, CheckOptions{Timeout: time.Second})
		if err != nil {
			t.Errorf("%s: %v", spec, err)
			continue
		}
		if got := c.Port(); got != want {
			t.Errorf("%s: Port() = %d, want %d", spec, got, want)
		}
	}
}
