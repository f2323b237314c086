// Step numbers as ranges ("w1-4", "steps 3-5, 9"), wherever a renderer lists them: the diagram's walkthrough tags,
// the walkthrough's text, table and verdicts.

/** "1-10, 15" from a sorted list of numbers */
export function ranges(ns: number[]): string {
  const out: string[] = []
  for (let i = 0; i < ns.length; i++) {
    let j = i
    while (j + 1 < ns.length && ns[j + 1] === ns[j]! + 1) j++
    out.push(i === j ? `${ns[i]}` : `${ns[i]}-${ns[j]}`)
    i = j
  }
  return out.join(', ')
}
