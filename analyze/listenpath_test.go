package analyze

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseListenPath(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     ListenPath
		err      bool
	}{
		{
			name: "6.18 order, other groups around",
			in: "TcpExt: SyncookiesSent SyncookiesRecv ListenOverflows ListenDrops TCPReqQFullDoCookies TCPReqQFullDrop\n" +
				"TcpExt: 7 1 30 45 2 13\n" +
				"IpExt: InNoRoutes InOctets\n" +
				"IpExt: 0 99\n",
			want: ListenPath{ListenOverflows: 30, ListenDrops: 45, ReqQFullDrop: 13, ReqQFullDoCookies: 2, SyncookiesSent: 7},
		},
		{
			// TCPReqQFullDrop came with 3.19: an older kernel reads 0.
			name: "a kernel without the request-queue counters",
			in:   "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 1 2 3\n",
			want: ListenPath{SyncookiesSent: 1, ListenOverflows: 2, ListenDrops: 3},
		},
		{name: "values missing", in: "TcpExt: ListenDrops ListenOverflows\nTcpExt: 1\n", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseListenPath(strings.NewReader(tc.in))
			if (err != nil) != tc.err {
				t.Fatalf("err %v, want error %v", err, tc.err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
