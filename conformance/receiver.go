package conformance

import "nanofaas.dev/devkit/receiver"

// StartReceiver starts the suite's callback receiver, the watchdog's
// receiver.Receiver standing in for the control plane: it listens on
// every interface of this machine (containers reach it through HostGateway,
// at ContainerURL) and takes only callbacks, POST under
// receiver.ExecutionsPath; it answers anything else 404. before, when
// not nil, runs for every callback before it is answered.
func StartReceiver(before func(receiver.Call)) (*receiver.Receiver, error) {
	return receiver.Start(receiver.Behaviour{Listen: "0.0.0.0:0", OnlyCallbacks: true, Before: before})
}

// ContainerURL is the CALLBACK_URL a container uses to reach r.
func ContainerURL(r *receiver.Receiver) string { return r.URL(HostGateway) }
