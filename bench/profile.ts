// Summaries of a V8 CPU profile (`Profiler.stop`, the format of --cpu-prof): where the
// sampled time went, by package or folder and by function, self time only, idle left out.

export interface CpuProfile {
  nodes: Array<{ id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }>
}

export interface ProfileSummary {
  samples: number
  areas: Array<{ name: string, percent: number }>
  frames: Array<{ name: string, percent: number }>
}

/** node_modules/<package>, src/<folder>, node:<module>, or V8's own entries ((garbage collector), (program)). */
export function areaOf (url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return pkg[1]!
  const own = /dist-bench\/(src\/[^/]+|bench)/.exec(url)
  if (own !== null) return own[1]!
  if (url.startsWith('node:')) return url.split('/')[0]!
  return url
}

function top (counts: Map<string, number>, total: number, count: number) {
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, count)
    .map(([name, hits]) => ({ name, percent: Math.round(1000 * hits / total) / 10 }))
}

export function summarize (profile: CpuProfile, count = 12): ProfileSummary {
  const areas = new Map<string, number>()
  const frames = new Map<string, number>()
  let total = 0
  for (const { callFrame: { functionName, url, lineNumber }, hitCount = 0 } of profile.nodes) {
    if (hitCount === 0 || functionName === '(idle)') continue
    total += hitCount
    const area = areaOf(url, functionName)
    areas.set(area, (areas.get(area) ?? 0) + hitCount)
    const frame = url === '' ? functionName : `${functionName || '(anonymous)'} ${area}:${lineNumber + 1}`
    frames.set(frame, (frames.get(frame) ?? 0) + hitCount)
  }
  return { samples: total, areas: top(areas, Math.max(1, total), count), frames: top(frames, Math.max(1, total), count) }
}
