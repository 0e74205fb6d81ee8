package web

import (
	"errors"
	"fmt"
	"net/http"
	"unicode"
	"unicode/utf8"

	"github.com/tailscope/tailscope/components"
	"github.com/tailscope/tailscope/internal/href"
	"github.com/tailscope/tailscope/internal/validate"
)

// IncidentFromWindowLink is the target of "Create incident from this
// window" links on any page: the incident form prefilled with the page's
// window (relative times are fixed to absolute ones by the form) and
// service.
func IncidentFromWindowLink(from, to, service string) string {
	return href.With("/incidents/new", "from", from, "to", to, "service", service)
}

// maxFormBody bounds form posts: notes may be 64 KiB, and a little more
// than that must still reach validation to get its clear message.
const maxFormBody = 256 << 10

// parsePostForm reads an urlencoded form body with a size limit.
func parsePostForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("the form is over %d KiB; shorten the notes", maxFormBody>>10)}
		}
		return badRequest("the form could not be read: %v", err)
	}
	return formError(r.PostForm)
}

// seeOther finishes a successful post (post/redirect/get).
func seeOther(w http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// placeFieldErrors puts each problem of a validation error next to the
// form field it is about. fields maps the validator's field names to the
// form's; problems of a field it does not map go to the returned general
// list. say words a problem for the form (nil: the message as it is);
// returning "" drops it, for a problem the form has already reported in
// its own words.
func placeFieldErrors(verr validate.ValidationError, fields map[string]string, errs components.FormErrors, say func(validate.FieldError) string) (general []string) {
	for _, e := range verr {
		msg := e.Msg
		if say != nil {
			msg = say(e)
		} else if e.Index >= 0 {
			msg = e.Error()
		}
		if msg == "" {
			continue
		}
		if f, ok := fields[e.Field]; ok {
			errs.Add(f, upperFirst(msg))
		} else {
			general = append(general, upperFirst(msg))
		}
	}
	return general
}

// upperFirst capitalises a message shown on its own.
func upperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}
