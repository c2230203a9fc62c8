// Package deploy holds the project's deployment manifests (kubernetes/) and
// their tests: every manifest there, and every manifest the emulator
// generates for the examples, is decoded strictly into the Kubernetes API
// types and checked against the watchdog's own configuration parser. No
// cluster is needed; kubernetes/README.md says how to run them on one.
package deploy
