// The panel's Content-Security-Policy allows <style> elements only with the nonce it made for
// this page (web/spa.py). The terminal emulator writes its colour rules into <style> elements
// it creates itself and offers no nonce option, so every <style> element this document
// creates is stamped with the page's nonce when it is created (before it is inserted, which
// is when the browser checks it). Style elements injected as markup still have no nonce.

export function stampStyleNonces(doc: Document): void {
  const nonce = doc.querySelector<HTMLMetaElement>('meta[property="csp-nonce"]')?.nonce;
  if (!nonce) return;
  // lib.dom marks an overload of createElement (deprecated tag names) deprecated; the rule
  // cannot tell which overload a bound reference is.
  // eslint-disable-next-line @typescript-eslint/no-deprecated
  const create = doc.createElement.bind(doc);
  const stamping = (tagName: string, options?: ElementCreationOptions): HTMLElement => {
    const element = create(tagName, options);
    if (element instanceof HTMLStyleElement) element.setAttribute("nonce", nonce);
    return element;
  };
  Object.defineProperty(doc, "createElement", { value: stamping, configurable: true });
}
