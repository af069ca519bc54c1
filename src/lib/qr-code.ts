/**
 * A QR code of `text` as a PNG data URL (RFC 2397), for an `<img src>`. The
 * encoder is loaded on first use: a service where nobody enrols never holds it.
 * Error correction level M (ISO/IEC 18004 §6.5.1: 15% of the symbol may be
 * damaged) keeps an otpauth URI's code small enough for any phone to read.
 */
export async function qrCodeDataUrl (text: string): Promise<string> {
  const { toDataURL } = await import('qrcode')
  return toDataURL(text, { errorCorrectionLevel: 'M', margin: 4, scale: 4, type: 'image/png' })
}
