import { describe, expect, it } from 'vitest'
import { checkRemoteSupported, displayRemote, hideSecret } from '../../src/git/remote.js'

// How a remote is shown (messages, --json, the audit line): a URL's password never is.

describe('displayRemote', () => {
  it.each([
    ['https://bot:s3cret@git.example.com/vault.git', 'https://bot:***@git.example.com/vault.git'],
    ['http://bot:pa:ss@127.0.0.1:8080/vault.git', 'http://bot:***@127.0.0.1:8080/vault.git'],
    ['https://bot:p%40ss@host/v.git', 'https://bot:***@host/v.git'],
    ['https://bot@host/v.git', 'https://bot@host/v.git'],
    ['https://host/path@v2/v.git', 'https://host/path@v2/v.git'],
    ['ssh://git@host:22/v.git', 'ssh://git@host:22/v.git'],
    ['git@host:v.git', 'git@host:v.git'],
    ['/mnt/backup/vault.git', '/mnt/backup/vault.git'],
    ['origin', 'origin'],
  ])('when the remote is %s then it is shown as %s', (remote, shown) => {
    expect(displayRemote(remote)).toBe(shown)
  })

  it('when a transport message quotes the password, as written or decoded, then hideSecret hides it', () => {
    const url = 'https://bot:p%40ss-word@host/v.git'
    expect(hideSecret(`fatal: unable to access '${url}': p@ss-word rejected, p%40ss-word too`, url)).toBe(
      "fatal: unable to access 'https://bot:***@host/v.git': *** rejected, *** too",
    )
  })
})

describe('checkRemoteSupported', () => {
  it.each(['http://host/v.git', 'HTTPS://host/v.git'])('when the js backend is given %s then it is accepted', (remote) => {
    expect(() => checkRemoteSupported('js', remote)).not.toThrow()
  })

  it.each(['ssh://host/v.git', 'host:v.git', 'git://host/v.git', 'file:///srv/v.git', '/srv/v.git', 'origin'])(
    'when the js backend is given %s then it refuses with REMOTE_UNSUPPORTED naming the git binary, and the git binary accepts it',
    (remote) => {
      expect(() => checkRemoteSupported('js', remote)).toThrow(
        expect.objectContaining({ code: 'REMOTE_UNSUPPORTED', message: expect.stringContaining('needs the git binary') }),
      )
      expect(() => checkRemoteSupported('cli', remote)).not.toThrow()
    },
  )
})
