package accounts

import (
	"maps"
	"slices"
	"sync"
)

// MemStore is an in-memory Store for tests and ephemeral servers. It copies
// records in and out so callers cannot alias its state.
type MemStore struct {
	mu    sync.Mutex
	users map[string]User
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{users: map[string]User{}} }

func clone(u User) User {
	u.Links = maps.Clone(u.Links)
	u.PasswordHash = slices.Clone(u.PasswordHash)
	u.LoginTokens = slices.Clone(u.LoginTokens)
	return u
}

// User implements Store.
func (s *MemStore) User(id string) (User, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	return clone(u), ok, nil
}

// PutUser implements Store.
func (s *MemStore) PutUser(u User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = clone(u)
	return nil
}

// DeleteUser implements Store.
func (s *MemStore) DeleteUser(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, id)
	return nil
}

// Users implements Store.
func (s *MemStore) Users() ([]User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, clone(u))
	}
	return out, nil
}
