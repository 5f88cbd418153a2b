package testenv

import (
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attr is a string (or number) attribute of an item, "" when absent.
func Attr(item map[string]types.AttributeValue, name string) string {
	switch v := item[name].(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	}
	return ""
}

// ImportResult is one line's answer of POST /api/users/import.
type ImportResult struct {
	Line                int
	Result, UUID, Email string
	Error               string
	ErrorDescription    string `json:"error_description"`
	Fields              map[string][]string
	Warnings            []string
}

// ImportAnswer is the body of POST /api/users/import's answer.
type ImportAnswer struct {
	Results []ImportResult
	Totals  struct{ Created, Skipped, Refused, Warnings int }
}

// AtOnce runs f(i) for i < n at once and tallies what they return (HTTP
// statuses, say).
func AtOnce(n int, f func(i int) int) map[int]int {
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			s := f(i)
			mu.Lock()
			statuses[s]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return statuses
}
