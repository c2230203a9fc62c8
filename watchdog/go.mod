module nanofaas.dev/watchdog

go 1.26.8

require golang.org/x/sys v0.50.0

require (
	github.com/alecthomas/kong v1.17.0 // indirect
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/rogpeppe/go-internal v1.16.0 // indirect
)
