//go:build !linux

package collectors

import (
	"context"
	"errors"
	"fmt"

	"github.com/snapdiag/snapdiag/bundle"
)

// Collect implements Collector. Packet capture uses AF_PACKET sockets, which
// only Linux has.
func (p *Packets) Collect(ctx context.Context, h Host, w *bundle.Writer) error {
	if h.PacketWindow <= 0 {
		return nil
	}
	return fmt.Errorf("packet capture: %w", errors.ErrUnsupported)
}
