// Command imagesize prints the size of each platform's image in an OCI layout:
//
//	go run ./cmd/imagesize ../dist/image-oci
//
// hack/image.sh runs it after `make image`.
package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/macaque-chaos/macaque/imagetest/ocilayout"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: imagesize OCI-LAYOUT-DIR")
		os.Exit(2)
	}
	images, err := ocilayout.Images(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagesize:", err)
		os.Exit(1)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PLATFORM\tLAYERS\tPULLED (manifest+config+compressed layers)\tUNCOMPRESSED\tMANIFEST")
	for _, im := range images {
		s, err := ocilayout.SizeOf(im.Image)
		if err != nil {
			fmt.Fprintf(os.Stderr, "imagesize: %s: %v\n", im.Platform.String(), err)
			os.Exit(1)
		}
		fmt.Fprintf(w, "%s\t%d\t%s (%d bytes)\t%s (%d bytes)\t%s\n", im.Platform.String(), s.Layers,
			ocilayout.MiB(s.Pulled()), s.Pulled(), ocilayout.MiB(s.Uncompressed), s.Uncompressed, im.Digest)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "imagesize:", err)
		os.Exit(1)
	}
}
