package conformance

import (
	"encoding/json"
	"strings"

	"nanofaas.dev/watchdog/events"
)

// Event is one of the watchdog's JSON log records named by the
// nanofaas.dev/watchdog/events contract.
type Event struct {
	// Name is the record's "msg", one of the events package's names.
	Name string
	// Attrs are the record's attributes, keyed by the events package's keys.
	Attrs map[string]any
}

// contractEvents are the record names of the contract.
var contractEvents = map[string]bool{
	events.WatchdogStarting:   true,
	events.RuntimeReady:       true,
	events.InvocationFinished: true,
}

// WatchdogEvents picks the contract's records out of a container log (JSON
// lines; everything else is skipped). Only watchdog-side (WD-*) checks use
// them: a runtime's verdict never depends on the watchdog's log.
func WatchdogEvents(logs []byte) []Event {
	var out []Event
	for _, line := range strings.Split(string(logs), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if name, ok := m["msg"].(string); ok && contractEvents[name] {
			out = append(out, Event{Name: name, Attrs: m})
		}
	}
	return out
}

// FindEvent returns the first event named name.
func FindEvent(evs []Event, name string) (Event, bool) {
	for _, e := range evs {
		if e.Name == name {
			return e, true
		}
	}
	return Event{}, false
}
