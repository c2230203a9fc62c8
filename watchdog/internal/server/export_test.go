package server

import "time"

// SetDeliveryDrainTimeout shortens the shutdown's wait for pending
// callbacks in a test; call the returned function to restore it.
func SetDeliveryDrainTimeout(d time.Duration) func() {
	old := deliveryDrainTimeout
	deliveryDrainTimeout = d
	return func() { deliveryDrainTimeout = old }
}
