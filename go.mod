module nanofaas.dev

go 1.26.8

require (
	nanofaas.dev/emulator v0.0.0
	nanofaas.dev/watchdog v0.0.0
)

require (
	github.com/alecthomas/kong v1.17.0
	golang.org/x/sys v0.50.0 // indirect
)

replace nanofaas.dev/watchdog => ./watchdog

replace nanofaas.dev/emulator => ./emulator

