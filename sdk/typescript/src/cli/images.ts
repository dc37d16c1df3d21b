// faas image list|get|import|delete
import type { Image } from '../resources/images.js';
import { arg, metadataOption, pairs, str, type CommandGroup } from './command.js';
import { bytes, table, UsageError } from './output.js';
import { age, LIST_USAGE, listOptions, printList, type Column } from './listing.js';

const IMAGE_COLUMNS: Array<Column<Image>> = [
  { header: 'ID', value: (i) => i.id },
  { header: 'NAME', value: (i) => i.name },
  { header: 'SOURCE', value: (i) => i.source },
  { header: 'SIZE', value: (i) => bytes(i.size) },
  { header: 'AGE', value: (i) => age(i.createdAt) },
];
const imageRow = (i: Image) => IMAGE_COLUMNS.map((c) => c.value(i));

export const imageCommands: CommandGroup = {
  list: {
    usage: `[--metadata k=v]… ${LIST_USAGE}`,
    summary: 'List images (AGE since imported)',
    options: { ...metadataOption, ...listOptions },
    async run(ctx) {
      printList(ctx, await ctx.client().images.list({ metadata: pairs(ctx, 'metadata') }), IMAGE_COLUMNS);
    },
  },
  get: {
    usage: '<image-id>',
    summary: 'Show an image',
    async run(ctx) {
      const image = await ctx.client().images.get(arg(ctx, 0, 'image-id'));
      ctx.out.result(image, (i: Image) => table(IMAGE_COLUMNS.map((c) => c.header), [imageRow(i)]));
    },
  },
  import: {
    usage: '<rootfs.tar[.gz]> --name <name>',
    summary: 'Import a root filesystem from a tar archive',
    options: { name: { type: 'string' } },
    async run(ctx) {
      const file = arg(ctx, 0, 'tar-file');
      const name = str(ctx, 'name');
      if (!name) throw new UsageError('image import needs --name <name>');
      const image = await ctx.out.progress(`importing ${file}`, ctx.client().images.import(file, { name }));
      ctx.out.result(image, (i: Image) => `imported ${i.id} (${i.name}, ${bytes(i.size)})`);
    },
  },
  delete: {
    usage: '<image-id>',
    summary: 'Delete an imported image (refused while snapshots use it)',
    async run(ctx) {
      const id = arg(ctx, 0, 'image-id');
      await ctx.client().images.delete(id);
      ctx.out.result({ id, deleted: true }, () => `deleted ${id}`);
    },
  },
};
