import { useId, type ButtonHTMLAttributes, type MouseEvent, type ReactNode } from 'react';

type Variant = 'primary' | 'secondary' | 'danger' | 'ghost';

export interface ActionButtonProps extends Omit<ButtonHTMLAttributes<HTMLButtonElement>, 'disabled'> {
  /** Why the action is unavailable; null/undefined when it is available. */
  disabledReason?: string | null;
  /** A request is in flight: the button is disabled and says so. */
  busy?: boolean;
  variant?: Variant;
  children: ReactNode;
}

/**
 * A button that stays visible and focusable when the action is not allowed: it gets
 * `aria-disabled="true"`, ignores clicks, and shows its reason as inline text right
 * below it (no hover needed, so it works on phones), linked with `aria-describedby` so
 * screen readers read it too.
 */
export function ActionButton({
  disabledReason,
  busy = false,
  variant = 'secondary',
  className,
  onClick,
  children,
  type = 'button',
  ...rest
}: ActionButtonProps) {
  const tipId = useId();
  const unavailable = !!disabledReason;
  const inert = unavailable || busy;
  const handle = (e: MouseEvent<HTMLButtonElement>) => {
    if (inert) {
      e.preventDefault();
      return;
    }
    onClick?.(e);
  };
  const classes = ['btn', `btn-${variant}`, className].filter(Boolean).join(' ');
  const button = (
    <button
      {...rest}
      type={type}
      className={classes}
      aria-disabled={inert ? 'true' : undefined}
      aria-busy={busy ? 'true' : undefined}
      aria-describedby={unavailable ? tipId : rest['aria-describedby']}
      title={unavailable ? disabledReason! : rest.title}
      onClick={handle}
    >
      {children}
    </button>
  );
  if (!unavailable) return button;
  return (
    <span className="has-tip">
      {button}
      <span id={tipId} className="tip" data-testid="disabled-reason">
        {disabledReason}
      </span>
    </span>
  );
}
