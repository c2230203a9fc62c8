package main

import (
	"testing"
	"time"
)

func TestPercentileIsNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond, 0: time.Millisecond} {
		if got := percentile(ds, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	s := summarize([]time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond})
	if s.N != 3 || s.P50 != 2 || s.Min != 1 || s.Max != 3 || s.Mean != 2 {
		t.Errorf("summarize = %+v", s)
	}
	if (summarize(nil) != Summary{}) {
		t.Error("summarize(nil) is not zero")
	}
}

// pair alternates which of the two goes first, and always returns a's
// time first.
func TestPairAlternatesOrder(t *testing.T) {
	var order []string
	a := func() (time.Duration, error) { order = append(order, "a"); return 1, nil }
	b := func() (time.Duration, error) { order = append(order, "b"); return 2, nil }
	for i := range 2 {
		da, db, err := pair(i, a, b)
		if err != nil || da != 1 || db != 2 {
			t.Fatalf("pair(%d) = %v, %v, %v", i, da, db, err)
		}
	}
	if got := order[0] + order[1] + order[2] + order[3]; got != "abba" {
		t.Errorf("order %s, want abba", got)
	}
}

func TestTargetsAreReportedNotAsserted(t *testing.T) {
	r := &Report{Binary: 9_400_000}
	r.Warm.Direct.P50, r.Warm.Header.P50 = 0.1, 0.15
	r.Memory.IdleRSSKB = 4000
	r.Memory.EndRSSKB = 4500
	met := map[string]bool{}
	for _, tg := range targets(r) {
		met[tg.Name] = tg.Met
	}
	for name, want := range map[string]bool{"warm overhead p50": true, "binary size": false, "idle RSS": true, "RSS growth": true} {
		if met[name] != want {
			t.Errorf("%s met = %v, want %v", name, met[name], want)
		}
	}
}
