package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/docex-dev/docex"
	"github.com/docex-dev/docex/driver"
	"github.com/docex-dev/docex/internal/contentkey"
	"github.com/google/uuid"
)

// CheckClaim reads the claim marker at the root (driver.Claimer). It
// returns an error wrapping docex.ErrNotInitialized and
// driver.ErrUnclaimed when there is none, one wrapping
// docex.ErrInvalidConfig and driver.ErrOtherSystem when it names another
// system, and docex.ErrStorageUnavailable when the content directory is
// missing or not a directory (deleted, or its volume not mounted: the
// content is not known to be gone, nor the store to be unclaimed). The
// marker is read beneath the root: a symbolic link there that leads out
// of it is an error.
func (s *FS) CheckClaim(ctx context.Context, systemID string) (err error) {
	defer outOfFiles(&err)
	root, err := os.OpenRoot(s.root)
	if err != nil {
		if m := missingRoot(s.root); m != nil {
			return m
		}
		return fmt.Errorf("content store: read the system marker: %w", err)
	}
	data, err := root.ReadFile(contentkey.Marker)
	root.Close()
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		if m := missingRoot(s.root); m != nil {
			return m
		}
		return contentkey.Unclaimed(s.root, driver.ErrUnclaimed)
	}
	if err != nil {
		return fmt.Errorf("content store: read the system marker: %w", err)
	}
	return contentkey.CheckMarker(s.root, data, systemID, driver.ErrOtherSystem)
}

// RootMissing reports whether the content directory does not exist:
// Claim creates it (docex init), nothing else does.
func (s *FS) RootMissing() bool {
	_, err := os.Stat(s.root)
	return errors.Is(err, fs.ErrNotExist)
}

// Claim writes the claim marker naming systemID at the root, creating the
// root (0700) when absent (driver.Claimer): a new file, fsynced, linked in
// without replacing a marker written meanwhile, and the root fsynced (even
// with noSync: the marker is written once). It returns an error wrapping
// docex.ErrInvalidConfig and driver.ErrOtherSystem, writing nothing, when
// a marker names another system. Whether a missing root may be created is
// the caller's decision (engine.Bootstrap: only for a system that never
// had one).
func (s *FS) Claim(ctx context.Context, systemID string) (err error) {
	defer outOfFiles(&err)
	if err := s.CheckClaim(ctx, systemID); !errors.Is(err, docex.ErrNotInitialized) && !s.RootMissing() {
		return err // claimed (nil), another system's, or unreadable
	}
	if err := os.MkdirAll(s.root, 0o700); err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	root, err := os.OpenRoot(s.root)
	if err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	defer root.Close()
	name := contentkey.Marker + ".tmp-" + uuid.NewString()
	tmp, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("content store: %w", err)
	}
	defer root.Remove(name)
	_, err = tmp.Write(contentkey.MarkerBytes(systemID))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("content store: write the system marker: %w", err)
	}
	// A link fails when a concurrent Claim linked its marker first:
	// then that marker decides.
	if err := root.Link(name, contentkey.Marker); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("content store: write the system marker: %w", err)
	}
	if err := syncDir(root, "."); err != nil {
		return err
	}
	return s.CheckClaim(ctx, systemID)
}
