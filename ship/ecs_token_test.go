package ship

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

// TestECSFullURIWithAuthToken: a task whose role is served at
// AWS_CONTAINER_CREDENTIALS_FULL_URI behind AWS_CONTAINER_AUTHORIZATION_TOKEN
// (Lambda, ECS Anywhere, Greengrass) signs with the role's key.
func TestECSFullURIWithAuthToken(t *testing.T) {
	const taskKey = "ASIATASKROLE"
	const authz = "task-authz-token-secret"
	asked := 0
	ecs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked++
		if r.Header.Get("Authorization") != authz {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"AccessKeyId": taskKey, "SecretAccessKey": "task-secret", "Token": "task-token",
			"Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	}))
	defer ecs.Close()
	store := startSigningStore(t)
	taskRoleEnv(t, ecs.URL+"/creds")
	t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", authz)
	s, err := NewS3Store(Target{Scheme: SchemeS3, Bucket: "bundles"}, S3Options{Endpoint: store.URL, Getenv: os.Getenv})
	if err != nil {
		t.Fatal(err)
	}
	s.Stat(context.Background(), "p/h/x.tar.zst")
	if ids := store.keyIDs(); len(ids) == 0 || ids[0] != taskKey {
		t.Errorf("requests signed with key ids %q, want the task role's %s (credential endpoint asked %d times)", ids, taskKey, asked)
	}
}
