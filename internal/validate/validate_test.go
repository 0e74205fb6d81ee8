package validate

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tailscope/tailscope/store"
)

func TestValidationError(t *testing.T) {
	var v ValidationError
	if v.Err() != nil {
		t.Fatal("an empty ValidationError is not an error")
	}
	v = append(v, Field("threshold", "threshold must be positive (got %s)", "0s"), Element("hops.allocation", 2, "allocation must be positive"))
	err := fmt.Errorf("budget: %w", v.Err())
	if got, want := err.Error(), "budget: threshold must be positive (got 0s); hops[2]: allocation must be positive"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, store.ErrInvalid) {
		t.Error("a ValidationError is not a store.ErrInvalid")
	}
	var back ValidationError
	if !errors.As(err, &back) || len(back) != 2 || back[1].Index != 2 || back[1].List() != "hops" || back[0].Index != -1 {
		t.Errorf("errors.As gave %#v", back)
	}
	if !v.Has("hops.allocation") || v.Has("hops") {
		t.Error("Has matches fields exactly")
	}
}
