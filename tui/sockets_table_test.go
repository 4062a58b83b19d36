package tui

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReadSocketTable checks what the sockets view keeps of each row, and
// that a damaged row is counted, not shown, and does not hide the rows
// after it.
func TestReadSocketTable(t *testing.T) {
	rows := strings.Join([]string{
		`{"family":"inet","state":"LISTEN","local":"0.0.0.0:143","remote":"0.0.0.0:*","recv_q":1,"send_q":128}`,
		`{"family":"inet","state":"ESTAB","local":"10.0.0.1:143","remote":"10.0.0.9:50000","timer":"keepalive","expires_ms":7000,"info":{"rtt_us":2500}}`,
		`{"state":"ESTAB","local":"10.0.0.1:14`,
		``,
		`{"family":"inet6","state":"SYN-RECV","local":"[fd00::1]:143","remote":"[fd00::3]:40001","timer":"on","retrans":2}`,
	}, "\n")
	tb, err := readSocketTable(strings.NewReader(rows), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []sockRow{
		{local: "0.0.0.0:143", remote: "0.0.0.0:*", recvQ: 1, sendQ: 128, lport: 143, state: 0},
		{local: "10.0.0.1:143", remote: "10.0.0.9:50000", timer: "keepalive", expiresMS: 7000, rttUS: 2500,
			lport: 143, rport: 50000, state: 1},
		{local: "[fd00::1]:143", remote: "[fd00::3]:40001", timer: "on", retrans: 2, lport: 143, rport: 40001, state: 2},
	}
	if diff := cmp.Diff(want, tb.rows, cmp.AllowUnexported(sockRow{})); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"LISTEN", "ESTAB", "SYN-RECV"}, tb.states); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	if tb.invalid != 1 {
		t.Errorf("%d unreadable rows, want 1", tb.invalid)
	}
}
