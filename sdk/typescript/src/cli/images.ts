// faas image list|get|import|delete
import type { Image } from '../resources/images.js';
import { arg, metadataOption, pairs, str, type CommandGroup } from './command.js';
import { bytes, table, UsageError } from './output.js';

const imageRow = (i: Image) => [i.id, i.name, i.source, bytes(i.size), i.createdAt];

export const imageCommands: CommandGroup = {
  list: {
    usage: '[--metadata k=v]…',
    summary: 'List images',
    options: metadataOption,
    async run(ctx) {
      const images = await ctx.client().images.list({ metadata: pairs(ctx, 'metadata') });
      ctx.out.result(images, (list: Image[]) => table(['ID', 'NAME', 'SOURCE', 'SIZE', 'CREATED'], list.map(imageRow)));
    },
  },
  get: {
    usage: '<image-id>',
    summary: 'Show an image',
    async run(ctx) {
      const image = await ctx.client().images.get(arg(ctx, 0, 'image-id'));
      ctx.out.result(image, (i: Image) => table(['ID', 'NAME', 'SOURCE', 'SIZE', 'CREATED'], [imageRow(i)]));
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
