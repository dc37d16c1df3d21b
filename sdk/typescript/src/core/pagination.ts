// Lists page transparently: `for await (const x of client.instances.list())` follows nextCursor
// until it is null, one page at a time. `await list()` and `.toArray()` collect every page.

export interface Page<Raw> {
  data: Raw[];
  nextCursor: string | null;
}

export type FetchPage<Raw> = (cursor: string | undefined) => Promise<Page<Raw>>;

export class AutoPager<Item, Raw = Item> implements AsyncIterable<Item>, PromiseLike<Item[]> {
  constructor(
    private readonly fetchPage: FetchPage<Raw>,
    private readonly wrap: (raw: Raw) => Item,
  ) {}

  /** Yields whole pages (as wrapped items), for callers that want to show progress per page. */
  async *pages(): AsyncGenerator<Item[], void, undefined> {
    let cursor: string | undefined;
    do {
      const page = await this.fetchPage(cursor);
      yield page.data.map(this.wrap);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Item, void, undefined> {
    for await (const page of this.pages()) yield* page;
  }

  async toArray(): Promise<Item[]> {
    const all: Item[] = [];
    for await (const item of this) all.push(item);
    return all;
  }

  then<A = Item[], B = never>(onFulfilled?: ((value: Item[]) => A | PromiseLike<A>) | null, onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.toArray().then(onFulfilled, onRejected);
  }
}
