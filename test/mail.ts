// A real SMTP server in the test process (smtp-server) and what it received, parsed (mailparser).
import { SMTPServer } from 'smtp-server'
import { simpleParser, type ParsedMail } from 'mailparser'
import { freePort } from './helper.js'

export const SMTP_USER = 'latchkey'
export const SMTP_PASSWORD = 'smtp-secret'

export class SmtpSink {
  readonly messages: ParsedMail[] = []
  private server: SMTPServer | undefined

  private constructor (readonly port: number) {}

  /** Listening on a free port, with AUTH (PLAIN, LOGIN) over the plain connection, as a relay on a private network allows. */
  static async start (): Promise<SmtpSink> {
    const sink = new SmtpSink(await freePort())
    await sink.listen()
    return sink
  }

  /** SMTP_URL for the service, with the sink's credentials. */
  get url (): string {
    return `smtp://${SMTP_USER}:${SMTP_PASSWORD}@127.0.0.1:${this.port}`
  }

  async listen (): Promise<void> {
    const server = new SMTPServer({
      logger: false,
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      onAuth: (auth, _session, callback) => {
        if (auth.username === SMTP_USER && auth.password === SMTP_PASSWORD) callback(null, { user: auth.username })
        else callback(new Error('Invalid username or password'))
      },
      onData: (stream, _session, callback) => {
        simpleParser(stream).then(parsed => {
          this.messages.push(parsed)
          callback()
        }, callback)
      }
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, '127.0.0.1', () => resolve())
    })
    this.server = server
  }

  /** Stops answering: connections are refused until listen() again. */
  async stop (): Promise<void> {
    const server = this.server
    this.server = undefined
    if (server !== undefined) await new Promise<void>(resolve => server.close(() => resolve()))
  }

  /** The messages sent to `address`, in the order they arrived. */
  to (address: string): ParsedMail[] {
    return this.messages.filter(message => recipients(message).includes(address.toLowerCase()))
  }
}

export function recipients (message: ParsedMail): string[] {
  const to = Array.isArray(message.to) ? message.to : message.to === undefined ? [] : [message.to]
  return to.flatMap(address => address.value.map(value => (value.address ?? '').toLowerCase()))
}

/** The token of a mail's link (`#token=…` in the default links). */
export function tokenOf (message: ParsedMail): string {
  const match = /token=([A-Za-z0-9_-]{43})/.exec(message.text ?? '')
  if (match === null) throw new Error(`no token in: ${message.subject}`)
  return match[1]!
}
