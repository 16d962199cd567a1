// Package policy reads the site policy: a JSON file an administrator keeps at
// /etc/runprov/policy.json (or names with $RUNPROV_POLICY) whose settings
// outrank every store's. It refuses a file that anyone but root could have
// changed (the file or any directory above it not owned by root, or writable
// by group or others, as sshd's StrictModes), unknown or repeated keys (a
// typo must not silently weaken the policy), and key files and directories
// that do not exist or do not parse.
//
// It does not enforce the policy: the commands and plugins do, from the
// core.Policy it returns.
package policy
