package conformance_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"nanofaas.dev/conformance"
)

// TestExampleImagesConform runs `conformance run` against every example
// image (nanofaas/example-<dir>:latest, built by scripts/build-images.sh):
// one-shot invocations with the callback reaching this test, the exact
// output of the manifest's example, a bad payload, another PORT or other
// file paths, the runtime's SIGTERM handling, and for the WARM examples a
// sequence of invocations and docker stop, CALLBACK_URL set in every run.
// Every checked requirement must pass, and every MUST be checked. go-binary's image is FROM scratch: WATCHDOG_CMD runs without a shell.
//
// Covers: RT-IMG-001, RT-IMG-002, RT-IMG-003, RT-PID1-001, RT-HTTP-001, RT-HTTP-002, RT-HTTP-003, RT-STDIO-001, RT-FILE-001, RT-FILE-002, RT-FN-001, RT-ERR-001, RT-ERR-002, RT-SIG-001, RT-WARM-001, RT-WARM-002, RT-CB-001, RT-LINES-001, RT-LINES-002, WD-CFG-004, WD-RES-003
func TestExampleImagesConform(t *testing.T) {
	d := requireDocker(t)
	examples := loadExamples(t)
	for _, ex := range examples {
		// One example at a time (each runs up to two containers): timings
		// such as a runtime's stop after SIGTERM stay meaningful on 2 cores.
		t.Run(ex.Dir, func(t *testing.T) {
			requireImage(t, d, ex.Image)
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			rep, err := conformance.Run(ctx, conformance.Options{
				Image:      ex.Image,
				Mode:       ex.ImageMode(),
				Payload:    ex.Example.Payload,
				Expect:     ex.Example.Output,
				BadPayload: json.RawMessage(badPayload),
				Level:      conformance.Should,
				Timeout:    20 * time.Second,
				Docker:     d,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s", summary(rep))
			if !rep.Conforms() {
				t.Errorf("verdict %s, want CONFORMS", rep.Verdict())
			}
			if rep.Mode != ex.ImageMode() {
				t.Errorf("mode %s, want the manifest's %s", rep.Mode, ex.ImageMode())
			}
			for _, res := range rep.Results {
				_, checked := slices.BinarySearch(sortedChecked(), res.ID)
				switch {
				case res.Status == conformance.Fail:
					t.Errorf("%s (%s) failed: %s", res.ID, res.Level, res.Reason)
				case checked && res.Status != conformance.Pass:
					t.Errorf("%s was not checked (%s): every example must pass every checked requirement", res.ID, res.Reason)
				}
			}
		})
	}
}

func sortedChecked() []string {
	ids := conformance.CheckedIDs()
	slices.Sort(ids)
	return ids
}
