package dnstest

import (
	"errors"
	"fmt"
)

// SetReadBuffer sets the size of the kernel's receive buffer of the server's UDP
// socket. With the default size, a server that many clients query at once on a
// busy machine (a benchmark with hundreds of checks in flight) loses the queries
// the kernel cannot queue before the server reads them, and its clients time
// out. Linux caps the size at net.core.rmem_max.
func (s *Server) SetReadBuffer(bytes int) error {
	conn, ok := s.udp.PacketConn.(interface{ SetReadBuffer(int) error })
	if !ok {
		return errors.New("dnstest: the UDP socket has no read buffer to set")
	}
	if err := conn.SetReadBuffer(bytes); err != nil {
		return fmt.Errorf("dnstest: set read buffer of %s: %w", s.Addr(), err)
	}
	return nil
}
