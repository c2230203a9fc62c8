package protocol

import (
	"testing"
	"time"
)

// Readiness polling is fast while a quick runtime may be about to answer,
// then backs off to pollInterval, so a slow one is not hammered.
func TestPollScheduleIsFastFirstThenBacksOff(t *testing.T) {
	var elapsed time.Duration
	wait := pollFirst
	polls := 0
	for elapsed < 10*time.Second {
		elapsed += wait
		polls++
		if elapsed < pollFastFor && wait != pollFirst {
			t.Fatalf("at %v the interval is %v, want %v during the first %v", elapsed, wait, pollFirst, pollFastFor)
		}
		if wait > pollInterval {
			t.Fatalf("at %v the interval is %v, over %v", elapsed, wait, pollInterval)
		}
		wait = nextPoll(wait, elapsed)
	}
	if wait != pollInterval {
		t.Errorf("after 10s the interval is %v, want %v", wait, pollInterval)
	}
	// 50 fast polls, a few growing ones, then one every 15 ms.
	if max := 60 + int(10*time.Second/pollInterval); polls > max {
		t.Errorf("%d polls in 10s, want at most %d", polls, max)
	}
}
