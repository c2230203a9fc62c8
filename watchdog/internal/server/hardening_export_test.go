package server

import "time"

// SetHTTPTimeouts shortens the timeouts of the watchdog's own HTTP server in
// a fault test; call the returned function to restore them.
func SetHTTPTimeouts(readHeader, read, write, idle time.Duration) func() {
	old := [4]time.Duration{readHeaderTimeout, readTimeout, writeTimeout, idleTimeout}
	readHeaderTimeout, readTimeout, writeTimeout, idleTimeout = readHeader, read, write, idle
	return func() {
		readHeaderTimeout, readTimeout, writeTimeout, idleTimeout = old[0], old[1], old[2], old[3]
	}
}

// MaxHeaderBytes is the header size limit of the watchdog's HTTP server.
var MaxHeaderBytes = maxHeaderBytes

// SetDeliveryLimits lowers the bounds on pending callbacks in a fault test;
// call the returned function to restore them.
func SetDeliveryLimits(n int, bytes int64) func() {
	oldN, oldBytes := maxPendingDeliveries, maxPendingBytes
	maxPendingDeliveries, maxPendingBytes = n, bytes
	return func() { maxPendingDeliveries, maxPendingBytes = oldN, oldBytes }
}
