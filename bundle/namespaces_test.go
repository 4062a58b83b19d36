package bundle

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestWriterUnder: a collector writing through Under writes inside the
// namespace's folder, by WriteFile and by Create, and its members keep
// their owner.
func TestWriterUnder(t *testing.T) {
	w, err := NewWriter(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	nw := w.For("all-netns").Under(NetNSDir(4026532290))
	if err := nw.WriteFile(SampleFile(0, SampleNetstat), []byte("TcpExt: x\n")); err != nil {
		t.Fatal(err)
	}
	f, err := nw.Create(PathSocketsTCP)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"netns/4026532290/samples/000/proc/net/netstat", "netns/4026532290/sockets/tcp.jsonl"}
	if diff := cmp.Diff(want, w.Files("all-netns")); diff != "" {
		t.Errorf("Files (-want +got):\n%s", diff)
	}
	if got := NetNSFile(4026532290, PathSocketsTCP); got != want[1] {
		t.Errorf("NetNSFile = %q, want %q", got, want[1])
	}
}

// TestRankNetNS: a namespace's members sort as the top level's of the same
// kind, so its socket table is large and last, and its samples early.
func TestRankNetNS(t *testing.T) {
	for _, name := range []string{PathSocketsTCP, SampleFile(1, SampleNetstat), PathPackets, SysctlPath("net.core.somaxconn")} {
		if got, want := rank(NetNSFile(7, name)), rank(name); got != want {
			t.Errorf("rank(%s) = %d, want %d as %s", NetNSFile(7, name), got, want, name)
		}
	}
	if !isLarge(NetNSFile(7, PathSocketsTCP)) {
		t.Errorf("a namespace's socket table is not large")
	}
}
