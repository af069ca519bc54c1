// The example SPA: latchkey/client in cookie mode (README, "The client"). The refresh
// token is an HttpOnly cookie the page never sees; the access token lives in memory;
// every tab of this origin shares one session, refreshes it once, and signs out together.
// With a bundler the import is 'latchkey/client'; here serve.ts serves dist/client/.
import { createClient } from '/latchkey/client/index.js'

const issuer = document.querySelector('meta[name="latchkey-issuer"]').content
export const auth = createClient({ issuer, mode: 'cookie' })

const byId = id => document.getElementById(id)
const print = value => { byId('output').textContent = typeof value === 'string' ? value : JSON.stringify(value, null, 2) }

function render (why) {
  const status = byId('status')
  status.dataset.status = auth.status
  status.textContent = auth.status === 'signed-in'
    ? `Signed in${auth.user ? ` as ${auth.user.email}` : ''}${why ? ` (${why})` : ''}`
    : `Signed out${why ? ` (${why})` : ''}`
  byId('sign-in').hidden = auth.status === 'signed-in'
  byId('account').hidden = auth.status !== 'signed-in'
}

auth.onChange(event => {
  const why = event.code ? `${event.reason}: ${event.code}` : event.reason
  render(event.type === 'refreshed' ? `refreshed: ${why}` : why)
})

/** Runs an action; an error is shown by its code (a LatchkeyError's), never thrown at the user. */
async function run (action) {
  try {
    const result = await action()
    if (result !== undefined) print(result)
  } catch (error) {
    print(error.code ? `${error.code}: ${error.message}` : String(error))
  }
}

byId('sign-in').addEventListener('submit', event => {
  event.preventDefault()
  const form = new FormData(event.target)
  const credentials = { email: form.get('email'), password: form.get('password') }
  run(() => event.submitter.value === 'register' ? auth.register(credentials) : auth.login(credentials))
})
byId('me').addEventListener('click', () => run(() => auth.me()))
byId('sessions').addEventListener('click', () => run(() => auth.sessions()))
byId('logout').addEventListener('click', () => run(() => auth.logout()))
byId('logout-everywhere').addEventListener('click', () => run(() => auth.logoutEverywhere()))

// A reload or a new tab: the cookie, if there is one, restores the session.
run(async () => {
  if (await auth.accessToken() !== undefined) await auth.me()
  render()
})
