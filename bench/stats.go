package main

import (
	"math"
	"sort"
	"time"
)

// stats summarises a sample, in milliseconds for durations.
type stats struct {
	p50, p95, min, max, mean float64
}

func summarize(ds []time.Duration) stats {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = ms(d)
	}
	return summarizeF(xs)
}

// summarizeF gives the median (the mean of the middle two for an even
// count) and the nearest-rank 95th percentile, rounded to 0.01.
func summarizeF(in []float64) stats {
	if len(in) == 0 {
		return stats{}
	}
	xs := append([]float64(nil), in...)
	sort.Float64s(xs)
	n := len(xs)
	med := xs[n/2]
	if n%2 == 0 {
		med = (xs[n/2-1] + xs[n/2]) / 2
	}
	rank := int(math.Ceil(0.95*float64(n))) - 1
	total := 0.0
	for _, x := range xs {
		total += x
	}
	return stats{
		p50: round2(med), p95: round2(xs[max(rank, 0)]), min: round2(xs[0]), max: round2(xs[n-1]),
		mean: total / float64(n),
	}
}
