package chart

import (
	"bytes"
	"image"
	"image/png"
	"math"
	"testing"
)

// The chart is a PNG with one bar per series and group, each in its
// series' colour, and no bar for a missing value.
func TestWritePNGDrawsEveryBar(t *testing.T) {
	c := &Chart{
		Title:  "test",
		Series: []string{"a", "b", "c"},
		Panels: []Panel{
			{Title: "calls/s", Groups: []string{"1 conn", "8 conn"}, Values: [][]float64{{100, 200}, {50, math.NaN()}, {10, 20}}, Format: Thousands},
			{Title: "p99", Groups: []string{"1 conn", "8 conn"}, Values: [][]float64{{1, 2}, {3, 4}, {5, 6}}, Format: Millis},
		},
	}
	var buf bytes.Buffer
	if err := c.WritePNG(&buf); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Dx(); got != 2*panelW {
		t.Fatalf("width %d, want %d (two panels in a row)", got, 2*panelW)
	}
	// Count the columns of each series' colour along the first panel's
	// baseline row, just above the x axis.
	counts := map[int]int{}
	b := img.Bounds()
	y := b.Max.Y - panelH + (panelH - marginB) - 2
	for x := 0; x < panelW; x++ {
		for s := range c.Series {
			if same(img, x, y, s) {
				counts[s]++
			}
		}
	}
	for s := range c.Series {
		if counts[s] == 0 {
			t.Errorf("series %d has no bar on the first panel", s)
		}
	}
	if counts[1] >= counts[0] {
		t.Errorf("series b has a missing value but as many bar columns (%d) as a (%d)", counts[1], counts[0])
	}
}

func same(img image.Image, x, y, s int) bool {
	r, g, b, _ := img.At(x, y).RGBA()
	p := palette[s]
	return uint8(r>>8) == p.R && uint8(g>>8) == p.G && uint8(b>>8) == p.B
}

func TestNiceStep(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{{0.7, 1}, {1, 1}, {1.2, 2}, {3, 5}, {7, 10}, {1800, 2000}} {
		if got := niceStep(c.in); got != c.want {
			t.Errorf("niceStep(%g) = %g, want %g", c.in, got, c.want)
		}
	}
}
