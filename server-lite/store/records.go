package store

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Records are small keyed values in a named bucket of their own, for a
// package that owns its data (the notification queue, users' messaging
// settings) without widening the shared records. Bucket names are
// prefixed "x:" so they never collide with the store's own buckets; a
// bucket is created on its first write.

func recBucket(name string) []byte { return []byte("x:" + name) }

// PutRecord writes key=value in bucket.
func (s *Store) PutRecord(bucket, key string, value []byte) error {
	if key == "" {
		return errors.New("store: empty record key")
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(recBucket(bucket))
		if err != nil {
			return fmt.Errorf("store: bucket %s: %w", bucket, err)
		}
		return b.Put([]byte(key), value)
	})
}

// PutRecordIfAbsent writes key=value unless key exists; it reports
// whether it wrote. The check and the write are one transaction, so two
// callers racing with the same key write once (idempotency keys).
func (s *Store) PutRecordIfAbsent(bucket, key string, value []byte) (bool, error) {
	wrote := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(recBucket(bucket))
		if err != nil {
			return fmt.Errorf("store: bucket %s: %w", bucket, err)
		}
		if b.Get([]byte(key)) != nil {
			return nil
		}
		wrote = true
		return b.Put([]byte(key), value)
	})
	return wrote, err
}

// Record reads key from bucket; nil when absent.
func (s *Store) Record(bucket, key string) ([]byte, error) {
	var v []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(recBucket(bucket)); b != nil {
			if x := b.Get([]byte(key)); x != nil {
				v = append([]byte(nil), x...)
			}
		}
		return nil
	})
	return v, err
}

// DeleteRecord removes key from bucket (absent is not an error).
func (s *Store) DeleteRecord(bucket, key string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(recBucket(bucket)); b != nil {
			return b.Delete([]byte(key))
		}
		return nil
	})
}

// Records calls fn for each record of bucket in key order; fn gets
// copies it may keep.
func (s *Store) Records(bucket string, fn func(key string, value []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(recBucket(bucket))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			return fn(string(k), append([]byte(nil), v...))
		})
	})
}
