package sessionworker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"sync"
	"time"

	"github.com/meshgo/meshagent/agent/consent"
	"github.com/meshgo/meshagent/proto/session"
)

// KindBar is the worker stream that keeps the privacy bar on the user's
// screen: opened with barMsg{Text}, the worker answers barMsg{Shown} (or
// closes the stream with the reason it could not show one), the service
// sends barMsg{Text} updates, the worker sends barMsg{Disconnect} when the
// user clicks the bar's Disconnect, and closing the stream removes it.
const KindBar = "bar"

type barMsg struct {
	Text       string `json:"text,omitempty"`
	Shown      bool   `json:"shown,omitempty"`
	Disconnect bool   `json:"disconnect,omitempty"`
}

// ShowBarFunc shows a privacy bar with text in the calling process's
// session; onDisconnect runs when the user clicks its Disconnect button.
type ShowBarFunc func(text string, onDisconnect func()) (consent.Bar, error)

// barShowTimeout bounds the wait for the worker to put its bar up.
const barShowTimeout = 30 * time.Second

// ShowBar shows the privacy bar in the worker's session. onDisconnect runs
// (once) when the user clicks its Disconnect; the bar goes when Close is
// called or the worker goes away.
func (c *Client) ShowBar(ctx context.Context, text string, onDisconnect func()) (consent.Bar, error) {
	s, err := c.OpenStream(KindBar, barMsg{Text: text})
	if err != nil {
		return nil, fmt.Errorf("privacy bar: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, barShowTimeout)
	defer cancel()
	f, err := s.Read(ctx)
	var m barMsg
	if err == nil {
		err = json.Unmarshal(f.Data, &m)
	}
	if err == nil && !m.Shown {
		err = errors.New("the worker did not show it")
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("privacy bar: %w", err)
	}
	go func() {
		var once sync.Once
		for {
			f, err := s.Read(context.Background())
			if err != nil {
				return
			}
			if json.Unmarshal(f.Data, &m) == nil && m.Disconnect && onDisconnect != nil {
				once.Do(onDisconnect)
			}
		}
	}()
	return streamBar{s}, nil
}

// streamBar is the service's handle on a bar a worker shows.
type streamBar struct{ s *Stream }

func (b streamBar) SetText(text string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, _ := json.Marshal(barMsg{Text: text})
	return b.s.Write(ctx, session.Frame{Data: d})
}

func (b streamBar) Close() error { return b.s.Close() }

// serveBar is the worker's side of a KindBar stream.
func serveBar(ctx context.Context, s *Stream, body []byte, show ShowBarFunc) error {
	var m barMsg
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("bar stream: %w", err)
	}
	if show == nil {
		return errors.New("no privacy bar in this session")
	}
	clicked := make(chan struct{}, 1)
	bar, err := show(m.Text, func() {
		select {
		case clicked <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return err
	}
	defer bar.Close()
	write := func(m barMsg) error {
		d, _ := json.Marshal(m)
		return s.Write(ctx, session.Frame{Data: d})
	}
	if err := write(barMsg{Shown: true}); err != nil {
		return nil
	}
	updates := make(chan string)
	go func() {
		defer close(updates)
		for {
			f, err := s.Read(ctx)
			if err != nil {
				return
			}
			var u barMsg
			if json.Unmarshal(f.Data, &u) == nil && u.Text != "" {
				select {
				case updates <- u.Text:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	for {
		select {
		case t, ok := <-updates:
			if !ok {
				return nil // the service closed the stream: the bar goes
			}
			if err := bar.SetText(t); err != nil {
				return fmt.Errorf("privacy bar text: %w", err)
			}
		case <-clicked:
			if err := write(barMsg{Disconnect: true}); err != nil {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// The prompt and bar windows' geometry (pixels, in the window's own
// coordinates; the windows have no frame). It is shared here, outside
// the Windows code, so a test that plays the person at the screen can
// aim at a button the way a person would, on a display where only the
// top-level window is visible to it (wine draws controls itself).
const (
	PromptWidth, PromptHeight = 440, 150
	BarWidth, BarHeight       = 480, 40
)

// PromptButtons are the consent prompt's Allow and Deny buttons.
func PromptButtons() (allow, deny image.Rectangle) {
	const bw, bh, gap, margin = 100, 30, 16, 16
	y := PromptHeight - margin - bh
	deny = image.Rect(PromptWidth-margin-bw, y, PromptWidth-margin, y+bh)
	allow = image.Rect(deny.Min.X-gap-bw, y, deny.Min.X-gap, y+bh)
	return allow, deny
}

// PromptTextArea is where the prompt's message is written.
func PromptTextArea() image.Rectangle {
	allow, _ := PromptButtons()
	return image.Rect(16, 16, PromptWidth-16, allow.Min.Y-8)
}

// BarButton is the privacy bar's Disconnect button; the bar's text takes
// the rest of its width.
func BarButton() image.Rectangle {
	const bw, margin = 100, 5
	return image.Rect(BarWidth-margin-bw, margin, BarWidth-margin, BarHeight-margin)
}

// ThroughWorkers is the service's consent seam: each prompt and notice
// goes to the worker of the session the viewer chose (consent.WithTSID in
// the context; the core puts the session's tsid there) or, without one,
// to the console session's worker, which get returns (Manager.Get). The
// privacy bar goes to the console session's worker.
func ThroughWorkers(get func(ctx context.Context, tsid *uint32) (*Client, error)) ConsentUI {
	return ConsentUI{
		Prompter: PrompterFunc(func(ctx context.Context, p Prompt) (Answer, error) {
			var tsid *uint32
			if id, ok := consent.TSIDFrom(ctx); ok {
				tsid = &id
			}
			c, err := get(ctx, tsid)
			if err != nil {
				return Answer{}, err
			}
			return c.Prompt(ctx, p)
		}),
		Bar: func(text string, onDisconnect func()) (consent.Bar, error) {
			ctx, cancel := context.WithTimeout(context.Background(), barShowTimeout)
			defer cancel()
			c, err := get(ctx, nil)
			if err != nil {
				return nil, err
			}
			return c.ShowBar(ctx, text, onDisconnect)
		},
	}
}
