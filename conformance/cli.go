package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kong"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"nanofaas.dev/emulator"
)

// Exit statuses of the conformance command.
const (
	// ExitConforms: every MUST requirement checked passed.
	ExitConforms = 0
	// ExitNonConforming: at least one MUST requirement failed.
	ExitNonConforming = 1
	// ExitUsage: bad arguments, no Docker, a missing image.
	ExitUsage = 2
	// ExitUnchecked: no MUST requirement failed, but some that apply were
	// not checked (no expected output, no bad payload, a run not reached),
	// and --allow-unchecked was not given.
	ExitUnchecked = 3
)

type cliArgs struct {
	Version kong.VersionFlag `help:"Print the spec version and exit."`
	Run     runCmd           `cmd:"" help:"Check a runtime image against the runtime-side (RT-*) requirements."`
	List    listCmd          `cmd:"" help:"List the requirements of the spec."`
	Spec    specCmd          `cmd:"" help:"Print the spec (SPEC.md), or one requirement of it."`
}

type runCmd struct {
	Image          string        `placeholder:"IMAGE" help:"The runtime image (in the local Docker engine), with the watchdog as its ENTRYPOINT (default: the manifest's image with --function)."`
	Function       string        `placeholder:"DIR" help:"A function directory (or its function.json), as for the emulator: its example.payload and example.output are the payload and the expected output, its image and mode the defaults."`
	Mode           string        `enum:"HTTP,STDIO,FILE,WARM," default:"" placeholder:"MODE" help:"HTTP, STDIO, FILE or WARM (default: the image's EXECUTION_MODE, WARM when it is a server image)."`
	Data           string        `short:"d" placeholder:"JSON" help:"The invocation's payload, one JSON document (default: the manifest's example, else ${payload})."`
	File           string        `placeholder:"FILE" help:"Read the payload from a file; - reads stdin."`
	Payload        string        `hidden:"" placeholder:"JSON" help:"Deprecated: --data JSON or --file FILE."`
	Expect         string        `placeholder:"JSON" help:"The output the payload must give (JSON or @FILE), compared as JSON values; checks RT-FN-001."`
	BadPayload     string        `placeholder:"JSON" help:"A payload the function must refuse (JSON or @FILE); checks RT-ERR-*."`
	AllowUnchecked bool          `help:"Exit 0 when no MUST requirement failed even if some were not checked (without it: exit 3)."`
	Level          string        `enum:"MUST,SHOULD,MAY" default:"SHOULD" help:"Weakest level checked: MUST, SHOULD (MUST and SHOULD) or MAY (everything)."`
	Timeout        time.Duration `default:"30s" help:"TIMEOUT_MS of each invocation."`
	Parallel       int           `default:"2" help:"Containers run at once."`
	JUnit          string        `name:"junit" type:"path" placeholder:"FILE" help:"Also write the results as JUnit XML (one <testsuite> per group)."`
	JSON           string        `name:"json" type:"path" placeholder:"FILE" help:"Also write the results as JSON."`
	Quiet          bool          `short:"q" help:"No progress lines on stderr."`
}

type listCmd struct {
	Side string `enum:"WD,RT," default:"" help:"Only the watchdog's (WD) or the runtime's (RT) requirements."`
	Mode string `enum:"HTTP,STDIO,FILE,WARM," default:"" help:"Only the requirements that apply to this mode."`
	JSON bool   `name:"json" help:"Print JSON instead of a table."`
}

type specCmd struct {
	ID string `arg:"" optional:"" placeholder:"ID" help:"Print only this requirement (e.g. RT-HTTP-003)."`
}

// exitRequest carries the status of kong's own exits (--help, --version).
type exitRequest struct{ code int }

// env carries what commands need.
type env struct {
	ctx            context.Context
	stdout, stderr io.Writer
	status         int
}

// Main runs the conformance command with args (without the program name)
// and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) (status int) {
	// testcontainers' own chatter would drown the progress lines.
	tclog.SetDefault(tclog.NewNoopLogger())
	spec := LoadSpec()
	var a cliArgs
	parser, err := kong.New(&a,
		kong.Name("conformance"),
		kong.Description("Checks a nanofaas function runtime image against the conformance spec "+spec.Version+
			" (SPEC.md): it runs the image with Docker, as the watchdog's control plane would, and reports one line per requirement.\n\n"+
			"Exit status: 0 every MUST requirement that applies was checked and passed, 1 a MUST requirement failed, 2 usage error, no Docker, or a missing image, "+
			"3 no MUST failed but some were not checked (0 with --allow-unchecked)."),
		kong.Vars{"version": "conformance spec " + spec.Version, "payload": DefaultPayload},
		kong.Writers(stdout, stderr),
		kong.UsageOnError(),
		kong.Exit(func(code int) { panic(exitRequest{code}) }),
	)
	if err != nil {
		fmt.Fprintf(stderr, "conformance: %v\n", err)
		return ExitUsage
	}
	defer func() {
		if r := recover(); r != nil {
			req, ok := r.(exitRequest)
			if !ok {
				panic(r)
			}
			status = req.code
			if status != 0 {
				status = ExitUsage
			}
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "conformance: %v\n", err)
		return ExitUsage
	}
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr}
	if err := kctx.Run(e, spec); err != nil {
		fmt.Fprintf(stderr, "conformance: %v\n", err)
		return ExitUsage
	}
	return e.status
}

// readDoc reads a JSON argument: the document itself, or @FILE.
func readDoc(flag, v string) (json.RawMessage, error) {
	if v == "" {
		return nil, nil
	}
	data := []byte(v)
	if name, ok := strings.CutPrefix(v, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
		data = b
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("--%s: not one JSON document: %.80q", flag, data)
	}
	return json.RawMessage(strings.TrimSpace(string(data))), nil
}

func (c *runCmd) Run(e *env, spec *Spec) error {
	o := Options{Image: c.Image, Mode: c.Mode, Timeout: c.Timeout, Parallel: c.Parallel}
	var err error
	if c.Function != "" {
		fn, err := emulator.LoadManifest(c.Function)
		if err != nil {
			return fmt.Errorf("--function: %w", err)
		}
		if o.Image == "" {
			o.Image = fn.Image
		}
		if o.Mode == "" && fn.Image != "" && fn.Image == o.Image {
			o.Mode = fn.Mode
		}
		if fn.Example != nil {
			o.Payload = fn.Example.Payload
			o.Expect = fn.Example.Output
		}
	}
	if o.Image == "" {
		return errors.New("no image: give --image IMAGE (or --function DIR whose manifest names an \"image\")")
	}
	if c.Payload != "" {
		if c.Data != "" || c.File != "" {
			return errors.New("give the payload with --data or --file (--payload is their deprecated form), not both")
		}
		if name, ok := strings.CutPrefix(c.Payload, "@"); ok {
			c.File = name
		} else {
			c.Data = c.Payload
		}
	}
	if c.Data != "" || c.File != "" {
		// The emulator's own rules: --data or --file, "-" for stdin.
		if o.Payload, err = emulator.ReadPayload(emulator.InvokeOptions{Data: c.Data, File: c.File}, os.Stdin, e.stderr); err != nil {
			return err
		}
	}
	if c.Expect != "" {
		if o.Expect, err = readDoc("expect", c.Expect); err != nil {
			return err
		}
	}
	if o.BadPayload, err = readDoc("bad-payload", c.BadPayload); err != nil {
		return err
	}
	if o.Level, err = ParseLevel(c.Level); err != nil {
		return err
	}
	if !c.Quiet {
		o.Progress = e.stderr
	}
	rep, err := runSpec(e.ctx, spec, o)
	if err != nil {
		switch {
		case errors.Is(err, ErrImageMissing):
			return fmt.Errorf("%v: build it (the examples: scripts/build-images.sh) or pull it first", err)
		case errors.Is(err, ErrNoDocker):
			return fmt.Errorf("%v: the conformance run needs a Docker engine (is dockerd running? is DOCKER_HOST right?)", err)
		}
		return err
	}
	rep.WriteText(e.stdout)
	if c.JUnit != "" {
		if err := writeFile(c.JUnit, rep.WriteJUnit); err != nil {
			return err
		}
	}
	if c.JSON != "" {
		if err := writeFile(c.JSON, rep.WriteJSON); err != nil {
			return err
		}
	}
	_, _, _, mustFailed := rep.Counts()
	switch {
	case mustFailed > 0:
		e.status = ExitNonConforming
	case len(rep.Unchecked()) > 0 && !c.AllowUnchecked:
		fmt.Fprintf(e.stderr, "conformance: MUST requirements were not checked, so the image is not shown to conform: "+
			"give what they need (--expect, --bad-payload, or --function DIR with an example) or fix what kept them from being reached; "+
			"--allow-unchecked accepts this\n")
		e.status = ExitUnchecked
	default:
		e.status = ExitConforms
	}
	return nil
}

func writeFile(name string, write func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	return f.Close()
}

func (c *listCmd) Run(e *env, spec *Spec) error {
	var reqs []Requirement
	for _, r := range spec.Requirements {
		if (c.Side == "" || r.Side == c.Side) && (c.Mode == "" || r.AppliesTo(c.Mode)) {
			reqs = append(reqs, r)
		}
	}
	if c.JSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Version      string        `json:"version"`
			Requirements []Requirement `json:"requirements"`
		}{spec.Version, append([]Requirement{}, reqs...)})
	}
	fmt.Fprintf(e.stdout, "nanofaas watchdog conformance spec %s: %d requirements\n\n", spec.Version, len(reqs))
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tLEVEL\tMODES\tCHECKED BY RUN\tTITLE")
	for _, r := range reqs {
		modes := strings.Join(r.Modes, ",")
		if len(r.Modes) == len(Modes) {
			modes = "all"
		}
		checked := "-"
		if _, ok := checks[r.ID]; ok {
			checked = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Level, modes, checked, r.Title)
	}
	return tw.Flush()
}

func (c *specCmd) Run(e *env, spec *Spec) error {
	if c.ID == "" {
		_, err := io.WriteString(e.stdout, SpecText())
		return err
	}
	text, ok := RequirementText(strings.ToUpper(strings.TrimSpace(c.ID)))
	if !ok {
		return fmt.Errorf("no requirement %q in spec %s: `conformance list` lists them", c.ID, spec.Version)
	}
	_, err := io.WriteString(e.stdout, text)
	return err
}
