// Package chart draws the grouped bar charts of "epicme-bench peers" as
// PNG, with the standard library's image packages and a fixed bitmap font,
// so that a benchmark run needs no plotting tool.
package chart

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Chart is a title, a legend of series, and panels of grouped bars: one
// group per category (a concurrency, say), one bar per series in each.
type Chart struct {
	Title string
	// Subtitle is a second line under the title (the machine, say).
	Subtitle string
	Series   []string
	Panels   []Panel
	// Columns is how many panels a row holds (default 3).
	Columns int
}

// Panel is one bar chart.
type Panel struct {
	Title  string
	Groups []string
	// Values[s][g] is series s in group g; NaN or a negative value draws no
	// bar (the series did not run there).
	Values [][]float64
	// Format prints a value on the axis and above its bar (default %g).
	Format func(float64) string
}

const (
	panelW  = 460
	panelH  = 300
	marginL = 64
	marginR = 12
	marginT = 28
	marginB = 34
	lineH   = 14
)

var (
	black = color.RGBA{0x22, 0x22, 0x22, 0xff}
	grey  = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	white = color.RGBA{0xff, 0xff, 0xff, 0xff}
	// A palette that stays distinguishable for the colour blind (Okabe-Ito).
	palette = []color.RGBA{
		{0x00, 0x72, 0xb2, 0xff}, {0x56, 0xb4, 0xe9, 0xff}, {0xe6, 0x9f, 0x00, 0xff},
		{0x00, 0x9e, 0x73, 0xff}, {0xcc, 0x79, 0xa7, 0xff}, {0xd5, 0x5e, 0x00, 0xff},
		{0xf0, 0xe4, 0x42, 0xff}, {0x99, 0x99, 0x99, 0xff},
	}
)

// WritePNG draws the chart.
func (c *Chart) WritePNG(w io.Writer) error {
	cols := c.Columns
	if cols <= 0 {
		cols = 3
	}
	cols = min(cols, max(1, len(c.Panels)))
	rows := (len(c.Panels) + cols - 1) / cols
	header := 2*lineH + 8
	if c.Subtitle != "" {
		header += lineH
	}
	legendRows := (len(c.Series) + 3) / 4
	header += legendRows*lineH + 6
	img := image.NewRGBA(image.Rect(0, 0, cols*panelW, header+rows*panelH))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)

	y := lineH + 4
	text(img, 8, y, c.Title, black)
	if c.Subtitle != "" {
		y += lineH
		text(img, 8, y, c.Subtitle, black)
	}
	y += lineH + 6
	for i, s := range c.Series {
		x := 8 + (i%4)*(cols*panelW/4)
		yy := y + (i/4)*lineH
		fill(img, image.Rect(x, yy-9, x+10, yy+1), palette[i%len(palette)])
		text(img, x+14, yy, s, black)
	}
	for i := range c.Panels {
		off := image.Pt((i%cols)*panelW, header+(i/cols)*panelH)
		c.Panels[i].draw(img, off, len(c.Series))
	}
	return png.Encode(w, img)
}

func (p *Panel) draw(img *image.RGBA, off image.Point, nseries int) {
	format := p.Format
	if format == nil {
		format = func(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
	}
	text(img, off.X+marginL, off.Y+lineH+2, p.Title, black)
	plot := image.Rect(off.X+marginL, off.Y+marginT, off.X+panelW-marginR, off.Y+panelH-marginB)

	top := 0.0
	for _, vs := range p.Values {
		for _, v := range vs {
			if !math.IsNaN(v) && v > top {
				top = v
			}
		}
	}
	step := niceStep(top / 4)
	if step <= 0 {
		step = 1
	}
	top = math.Ceil(top/step) * step
	if top == 0 {
		top = step
	}
	yOf := func(v float64) int { return plot.Max.Y - int(v/top*float64(plot.Dy())) }
	for v := 0.0; v <= top+step/2; v += step {
		yy := yOf(v)
		fill(img, image.Rect(plot.Min.X, yy, plot.Max.X, yy+1), grey)
		s := format(v)
		text(img, plot.Min.X-6-width(s), yy+4, s, black)
	}
	fill(img, image.Rect(plot.Min.X, plot.Min.Y, plot.Min.X+1, plot.Max.Y+1), black)
	fill(img, image.Rect(plot.Min.X, plot.Max.Y, plot.Max.X, plot.Max.Y+1), black)

	ng := len(p.Groups)
	if ng == 0 || nseries == 0 {
		return
	}
	gw := plot.Dx() / ng
	bw := max(2, (gw-16)/nseries)
	for g, name := range p.Groups {
		gx := plot.Min.X + g*gw + (gw-bw*nseries)/2
		for s := 0; s < nseries && s < len(p.Values); s++ {
			if g >= len(p.Values[s]) {
				continue
			}
			v := p.Values[s][g]
			if math.IsNaN(v) || v < 0 {
				continue
			}
			x := gx + s*bw
			fill(img, image.Rect(x+1, yOf(v), x+bw-1, plot.Max.Y), palette[s%len(palette)])
		}
		text(img, plot.Min.X+g*gw+(gw-width(name))/2, plot.Max.Y+lineH+2, name, black)
	}
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 0 {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

var face = basicfont.Face7x13

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: face, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func width(s string) int { return font.MeasureString(face, s).Ceil() }

// Thousands formats a count with a k suffix above 1000 (12.5k).
func Thousands(v float64) string {
	if v >= 1000 {
		return strconv.FormatFloat(v/1000, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// Millis formats milliseconds.
func Millis(v float64) string { return fmt.Sprintf("%gms", v) }
