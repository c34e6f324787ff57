/** What a setting's reader returns instead of a value: what the value must be. */
export class Problem {
  constructor(readonly text: string) {}
}
