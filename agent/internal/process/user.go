package process

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// userInfo is resolved from /etc/passwd directly: os/user without cgo does the
// same, but we also need supplementary groups and want no NSS surprises.
type userInfo struct {
	name   string
	uid    uint32
	gid    uint32
	home   string
	shell  string
	groups []uint32
}

var (
	passwdFile = "/etc/passwd"
	groupFile  = "/etc/group"
)

// lookupUser resolves a name or numeric uid. A numeric uid absent from
// /etc/passwd is allowed (like `docker exec -u 1234`) with gid = uid.
func lookupUser(ref string) (*userInfo, bool) {
	n, numErr := strconv.ParseUint(ref, 10, 32)
	var found *userInfo
	scanColon(passwdFile, func(f []string) bool {
		if len(f) < 7 {
			return true
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			return true
		}
		if f[0] == ref || (numErr == nil && uid == n) {
			found = &userInfo{name: f[0], uid: uint32(uid), gid: uint32(gid), home: f[5], shell: f[6]}
			return false
		}
		return true
	})
	if found == nil {
		if numErr != nil {
			return nil, false
		}
		found = &userInfo{uid: uint32(n), gid: uint32(n)}
	}
	found.groups = supplementaryGroups(found.name, found.gid)
	return found, true
}

func currentUser() *userInfo {
	u, ok := lookupUser(strconv.Itoa(os.Getuid()))
	if !ok {
		return nil
	}
	return u
}

func supplementaryGroups(name string, primary uint32) []uint32 {
	groups := []uint32{primary}
	if name == "" {
		return groups
	}
	scanColon(groupFile, func(f []string) bool {
		if len(f) < 4 {
			return true
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil || uint32(gid) == primary {
			return true
		}
		for _, m := range strings.Split(f[3], ",") {
			if m == name {
				groups = append(groups, uint32(gid))
				break
			}
		}
		return true
	})
	return groups
}

func scanColon(path string, fn func([]string) bool) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !fn(strings.Split(line, ":")) {
			return
		}
	}
}
