package emulator

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchDebounce groups the events of one save (editors write, rename and
// chmod in quick succession) into one restart.
const watchDebounce = 250 * time.Millisecond

// ignoredDirs are never watched: dependencies, build output, caches.
var ignoredDirs = map[string]bool{
	".git": true, "node_modules": true, "__pycache__": true, "target": true,
	".venv": true, "venv": true, ".idea": true, ".vscode": true, ".mypy_cache": true, ".pytest_cache": true,
}

// ignoredFile tells files whose changes do not matter: editor swap and
// backup files, compiled Python.
func ignoredFile(name string) bool {
	base := filepath.Base(name)
	return strings.HasPrefix(base, ".#") || strings.HasSuffix(base, "~") || strings.HasSuffix(base, ".swp") ||
		strings.HasSuffix(base, ".swx") || strings.HasSuffix(base, ".pyc") || strings.HasSuffix(base, ".tmp") ||
		base == "4913" // vim's write test
}

// watch starts watching every function's directories; a change reloads the
// function's manifest and restarts its warm watchdog. It returns a stop func.
func (s *Server) watch() (func(), error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("cannot watch files: %w", err)
	}
	// owners maps a watched directory to the functions it belongs to.
	owners := map[string][]string{}
	roots := map[string][]string{}
	for _, name := range s.names() {
		for _, d := range s.functions[name].fn.Watched() {
			roots[d] = append(roots[d], name)
		}
	}
	var mu sync.Mutex
	add := func(root string, names []string) {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if path != root && ignoredDirs[d.Name()] {
				return filepath.SkipDir
			}
			mu.Lock()
			defer mu.Unlock()
			if _, seen := owners[path]; !seen {
				if err := w.Add(path); err != nil {
					s.log.Printf("--watch: cannot watch %s: %v", path, err)
					return nil
				}
			}
			owners[path] = appendUnique(owners[path], names...)
			return nil
		})
	}
	for root, names := range roots {
		add(root, names)
		s.log.Printf("--watch: watching %s for %s", root, strings.Join(names, ", "))
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		timers := map[string]*time.Timer{}
		changed := map[string]string{}
		fire := make(chan string, 16)
		for {
			select {
			case <-done:
				for _, t := range timers {
					t.Stop()
				}
				return
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.log.Printf("--watch: %v", err)
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Op == fsnotify.Chmod || ignoredFile(ev.Name) {
					continue
				}
				dir := filepath.Dir(ev.Name)
				mu.Lock()
				names := owners[dir]
				if _, isDir := owners[ev.Name]; isDir && ev.Has(fsnotify.Remove|fsnotify.Rename) {
					delete(owners, ev.Name)
				}
				mu.Unlock()
				if ev.Has(fsnotify.Create) {
					if info, err := os.Stat(ev.Name); err == nil && info.IsDir() && !ignoredDirs[info.Name()] {
						add(ev.Name, names)
					}
				}
				for _, name := range names {
					changed[name] = ev.Name
					if t, ok := timers[name]; ok {
						t.Reset(watchDebounce)
						continue
					}
					timers[name] = time.AfterFunc(watchDebounce, func() {
						select {
						case fire <- name:
						case <-done:
						}
					})
				}
			case name := <-fire:
				delete(timers, name)
				file := changed[name]
				delete(changed, name)
				s.reload(name, file)
			}
		}
	}()
	return func() {
		close(done)
		_ = w.Close()
		wg.Wait()
	}, nil
}

// reload applies a change under a function's directories: its manifest is
// read again (a bad one is reported and the previous definition kept), and
// a warm watchdog restarts so the change is live at the next invocation.
func (s *Server) reload(name, file string) {
	s.mu.Lock()
	e := s.functions[name]
	cur := e.fn
	s.mu.Unlock()
	rel := file
	if r, err := filepath.Rel(filepath.Dir(cur.Manifest), file); err == nil && cur.Manifest != "" {
		rel = r
	}
	if e.source != "" {
		fn, err := LoadManifest(e.source)
		setProblem := func(p string) {
			s.mu.Lock()
			e.problem = p
			s.mu.Unlock()
		}
		switch {
		case err != nil:
			s.log.Printf("function %s: %s changed, but the manifest is not valid now; keeping the previous definition: %v", name, rel, err)
			setProblem(err.Error())
			return
		case fn.Name != name:
			s.log.Printf("function %s: the manifest now names it %q; renaming needs a restart of the emulator, keeping the previous definition", name, fn.Name)
			setProblem(fmt.Sprintf("the manifest now names the function %q; renaming needs a restart of the emulator", fn.Name))
			return
		}
		if fn.Warm != cur.Warm {
			s.log.Printf("function %s: switching between warm and one-shot needs a restart of the emulator; keeping the previous definition", name)
			setProblem("switching between warm and one-shot needs a restart of the emulator")
			return
		}
		s.mu.Lock()
		e.fn, e.problem = fn, ""
		s.mu.Unlock()
		if e.inst != nil {
			e.inst.SetFunction(fn)
		}
	}
	if e.inst == nil {
		s.log.Printf("function %s: %s changed; the next invocation uses it", name, rel)
		return
	}
	s.log.Printf("function %s: %s changed; restarting its warm watchdog", name, rel)
	if err := e.inst.Restart(s.runCtx); err != nil && !errors.Is(err, errStopped) {
		s.log.Printf("function %s: the warm watchdog did not restart: %v (trying again at the next invocation)", name, err)
		return
	}
	s.log.Printf("function %s: warm watchdog restarted (pid %d)", name, e.inst.Pid())
}

func appendUnique(list []string, items ...string) []string {
	for _, it := range items {
		found := false
		for _, l := range list {
			if l == it {
				found = true
				break
			}
		}
		if !found {
			list = append(list, it)
		}
	}
	return list
}
