package host_test

import (
	"fmt"

	"github.com/framewire/framewire/engine/host"
)

// Parse takes the framewire command's flags; host.Run(ctx, model, o,
// logger, nil) then serves a model with them until ctx ends.
func ExampleParse() {
	o, err := host.Parse("mymodel", []string{"-addr", ":9000", "-mode", "node", "-capacity", "8"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(o.Addr, o.Mode, o.Node.Capacity, o.Loopback)
	_, err = host.Parse("mymodel", []string{"-mode", "cluster"})
	fmt.Println(err)
	// Output:
	// :9000 node 8 true
	// -mode "cluster": want local or node
}
